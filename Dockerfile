# syntax=docker/dockerfile:1
# The tower's images, one per service, from one wheel; each installs only its own extra, so the
# collector's image carries no Streamlit, pydeck or apprise. docker-compose.yml picks the target:
#   ingest (core + [influx]), alerts ([alerts,influx]), dashboard ([dashboard,influx]), api ([api,influx]), tools (core:
#   `tower devices|accounts`, which talk to the broker over MQTT, and `tower simulate`).
# Pinned base: a patch release on a Debian release (pin the digest too where your registry policy asks).
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS wheels
# gcc only here, for any dependency without a wheel for this platform; the images get wheels only.
RUN apt-get update && apt-get install -y --no-install-recommends gcc && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY tower ./tower
COPY ingest ./ingest
COPY alerts ./alerts
COPY simulators ./simulators
COPY dashboards ./dashboards
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[influx,alerts,dashboard,api]"

FROM ${PYTHON_IMAGE} AS base
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home tower \
    && mkdir /data && chown tower:tower /data
ENV TOWER_DATA_DIR=/data PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /data
VOLUME /data
ENTRYPOINT ["tower"]

FROM base AS ingest
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels "control-tower[influx]"
USER tower
CMD ["ingest"]

FROM base AS alerts
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels "control-tower[alerts,influx]"
USER tower
CMD ["alerts", "run"]

FROM base AS dashboard
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels "control-tower[dashboard,influx]"
USER tower
EXPOSE 8501
CMD ["dashboard", "--port", "8501"]

FROM base AS api
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels "control-tower[api,influx]"
USER tower
EXPOSE 8600
CMD ["api", "--port", "8600"]

FROM base AS tools
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels "control-tower"
USER tower
CMD ["accounts", "list"]
