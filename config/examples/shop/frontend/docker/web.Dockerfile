FROM scratch
COPY public /srv
