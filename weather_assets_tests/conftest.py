"""Shared fixtures: real parts only (a moto S3 server over HTTP, temporary lakes, ephemeral Dagster instances)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import datetime

import boto3
import dagster as dg
import pytest
from moto.server import ThreadedMotoServer

from weather_assets.assets.ingest import kma_observations, weather_features
from weather_assets.partitions import partition_key, range_tags
from weather_assets_tests.kma_hub import hub  # noqa: F401 - the API Hub stand-in, for every test module

STATIONS = "100,101,102,104,105,108,112,119,129,133"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 in server mode: a real HTTP endpoint on loopback, as MinIO or AWS would be."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """A fresh bucket on the moto server, with boto3 pointed at it through AWS_ENDPOINT_URL_S3."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"lake-{request.node.name.lower().replace('_', '-')[:40]}-{free_port()}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return bucket


def ingest(
    resources: dict[str, object],
    first: datetime,
    last: datetime | None = None,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialize both ingest assets for one hour, or for first..last as one single-run backfill."""
    return dg.materialize(
        [kma_observations, weather_features],
        resources=resources,
        partition_key=None if last is not None else partition_key(first),
        tags=range_tags(first, last) if last is not None else None,
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
