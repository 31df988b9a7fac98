# The worker image: the farm with its worker extras and the docker CLI for local-docker mode.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends docker.io git && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY farm farm
COPY workers workers
RUN pip install --no-cache-dir '.[worker]'
ENTRYPOINT []
CMD ["farm", "worker"]
