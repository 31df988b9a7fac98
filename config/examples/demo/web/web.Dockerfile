FROM scratch
COPY index.html /srv/index.html
