# One image for every tower service; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY tower ./tower
COPY ingest ./ingest
COPY alerts ./alerts
COPY simulators ./simulators
COPY dashboards ./dashboards
RUN apt-get update && apt-get install -y --no-install-recommends gcc \
    && pip install --no-cache-dir . \
    && apt-get purge -y gcc && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*
ENV TOWER_DATA_DIR=/data
VOLUME /data
ENTRYPOINT ["tower"]
