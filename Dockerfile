# syntax=docker/dockerfile:1
# edgefab: gateway, MES and simulator in one small image (python:3.11-slim, non-root).
# Multi-stage: wheels are built in the first stage, the final image gets only the installed
# packages (no compilers, no pip cache). Builds on linux/arm64 (Raspberry Pi) and linux/amd64.
#
#   docker build -t edgefab:local .
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY connectors ./connectors
COPY edge_config ./edge_config
COPY simulators ./simulators
COPY mes_lite ./mes_lite
COPY dashboards ./dashboards
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels edgefab \
 && useradd --system --uid 10001 --home-dir /var/lib/edgefab --create-home --shell /usr/sbin/nologin edgefab
WORKDIR /app
# configs and examples referenced by docker-compose.yml (deploy/compose/edge.yaml includes the demo)
COPY --chown=root:root edge_config/examples ./edge_config/examples
COPY --chown=root:root mes_lite/examples ./mes_lite/examples
COPY --chown=root:root deploy/compose ./deploy/compose
USER edgefab
VOLUME ["/var/lib/edgefab"]
EXPOSE 8000 9108 5020 4840
ENTRYPOINT []
CMD ["edgefab", "--help"]
