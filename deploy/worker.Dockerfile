# The farm's image: a build worker (`farm worker`), Flower and the metrics endpoint all run from it.
#
#   docker build -f deploy/worker.Dockerfile -t REGISTRY/farm-worker:TAG .   (the repo is the context;
#   .dockerignore keeps .venv/, .farm/ and .git/ out of it), then docker push REGISTRY/farm-worker:TAG.
#
# It carries the Docker CLI (local-docker mode talks to an engine through DOCKER_HOST) and buildctl
# (cluster-buildkit mode talks to a buildkitd through BUILDKIT_HOST); neither daemon runs in it.
# BASE, BUILDKIT_IMAGE, APT_PACKAGES and PIP_FLAGS exist so the tests can build it without pulling
# (a base they make, `--build-arg APT_PACKAGES= --build-arg PIP_FLAGS="--no-deps --no-build-isolation"`).
ARG BASE=python:3.11-slim-bookworm
ARG BUILDKIT_IMAGE=moby/buildkit:v0.23.2
FROM ${BUILDKIT_IMAGE} AS buildkit

FROM ${BASE}
ARG APT_PACKAGES="docker.io git ca-certificates"
RUN if [ -n "$APT_PACKAGES" ]; then \
      apt-get update && apt-get install -y --no-install-recommends $APT_PACKAGES && rm -rf /var/lib/apt/lists/*; \
    fi
COPY --from=buildkit /usr/bin/buildctl /usr/local/bin/buildctl
WORKDIR /src
COPY pyproject.toml README.md ./
COPY farm farm
COPY workers workers
ARG PIP_FLAGS=""
RUN python3 -m pip install --no-cache-dir $PIP_FLAGS '.[worker]' && rm -rf build *.egg-info
# Not root: the worker needs no privilege of its own (the engine and buildkitd are elsewhere). The
# directories exist owned by that user, so volumes mounted on them (compose's named volumes) are too.
RUN mkdir -p /var/lib/farm/worker /var/lib/farm/flower /home/farm && \
    chown -R 10001:10001 /var/lib/farm /home/farm
USER 10001:10001
ENV HOME=/home/farm FARM_WORKER_DIR=/var/lib/farm/worker FARM_HEARTBEAT_FILE=/tmp/farm-heartbeat \
    FARM_BUILDCTL=/usr/local/bin/buildctl PYTHONUNBUFFERED=1
ENTRYPOINT []
# exec form: Celery is PID 1, so SIGTERM starts its soft shutdown (running builds get to finish).
CMD ["farm", "worker"]
