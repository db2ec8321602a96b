# The platform's image: the Dagster code location (gRPC), the webserver, the daemon and the MLflow server of
# docker-compose.yml all run from it. It installs the package exactly as the README's main command does.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/home

WORKDIR /app
COPY pyproject.toml README.md ./
COPY weather_assets ./weather_assets
COPY sql ./sql
COPY docker ./docker
RUN python3 -m venv .venv && .venv/bin/pip install -e .

# The stack's instance: MySQL storage, queued runs (docker/dagster.yaml; the repository root's dagster.yaml is
# the embedded instance of `dg dev`).
COPY docker/dagster.yaml ${DAGSTER_HOME}/dagster.yaml
ENV PATH=/app/.venv/bin:$PATH

RUN useradd --create-home --uid 10001 weather && mkdir -p ${DAGSTER_HOME} && chown -R weather ${DAGSTER_HOME} /app
USER weather
EXPOSE 3000 4000 5000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "weather_assets.definitions"]
