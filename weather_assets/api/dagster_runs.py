"""The read API's view of Dagster: start an `ingest_and_predict` run for an hour, follow it, and read back the
runs it started (tagged ``weather/served_by: api``), which are the deployment's shared memory of how many runs
the API launched lately and which hours failed.

Two ways, one interface: through the webserver's GraphQL API (``DAGSTER_GRAPHQL_URL``, the full stack), or in
the API's own process on the instance in ``DAGSTER_HOME`` (else ``<data_dir>/dagster``, shared by the workers).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests

from weather_assets.api.settings import Settings
from weather_assets.environment import dagster_home

JOB = "ingest_and_predict"
SERVED_BY = {"weather/served_by": "api"}
# The API's runs fail at once for an hour KMA has not published (a request waits for no publication), and retry
# no step: the job's retry policy waits minutes between attempts, which suits the schedule, not a request. So a
# run lasts what the KMA client's own timeouts and retries allow.
RUN_CONFIG = {
    "ops": {"kma_observations": {"config": {"wait_for_publication": False}}},
    "execution": {"config": {"retries": {"disabled": {}}}},
}
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}
GRAPHQL_TIMEOUT = 10  # seconds for one call to the webserver


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    status: str  # Dagster's run status: QUEUED, STARTED, SUCCESS, FAILURE, CANCELED, ...
    created: float  # epoch seconds
    updated: float | None  # epoch seconds of the last status change


class DagsterRuns(Protocol):
    def recent(self, since: float) -> list[RunRecord]:
        """The API's runs created after `since` (epoch seconds)."""

    def last_for(self, partition: str) -> RunRecord | None:
        """The API's newest run for `partition`."""

    def start(self, partition: str) -> str:
        """Starts a run for `partition`; returns once Dagster has recorded it (so `recent` counts it)."""

    def status(self, run_id: str) -> str: ...

    def abandon(self, run_id: str) -> None:
        """Stops a run the API no longer waits for, when Dagster can; the run then fails or is canceled."""


class GraphQLRuns:
    """Runs on the webserver, launched by its run coordinator (queued when the deployment queues runs)."""

    RUNS = """
    query ApiRuns($filter: RunsFilter!, $limit: Int) {
      runsOrError(filter: $filter, limit: $limit) {
        __typename
        ... on Runs { results { runId status creationTime updateTime } }
        ... on PythonError { message }
      }
    }"""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._client: Any = None

    @property
    def client(self) -> Any:
        """dagster-graphql's client, made on first use (it asks the webserver for its schema)."""
        if self._client is None:
            from dagster_graphql import DagsterGraphQLClient

            address = urlsplit(self.url)
            self._client = DagsterGraphQLClient(
                address.hostname or "127.0.0.1",
                port_number=address.port,
                use_https=address.scheme == "https",
                timeout=GRAPHQL_TIMEOUT,
                path_prefix=address.path.rstrip("/"),
            )
        return self._client

    def _runs(self, filter_: dict[str, Any], limit: int | None = None) -> list[RunRecord]:
        answer = requests.post(
            f"{self.url}/graphql",
            json={"query": self.RUNS, "variables": {"filter": filter_, "limit": limit}},
            timeout=GRAPHQL_TIMEOUT,
        )
        answer.raise_for_status()
        runs = answer.json()["data"]["runsOrError"]
        if runs["__typename"] != "Runs":
            raise RuntimeError(f"runsOrError answered {runs['__typename']}: {runs.get('message', '')}")
        return [
            RunRecord(run["runId"], run["status"], run["creationTime"], run["updateTime"]) for run in runs["results"]
        ]

    def recent(self, since: float) -> list[RunRecord]:
        return self._runs({"tags": _tags(SERVED_BY), "createdAfter": since})

    def last_for(self, partition: str) -> RunRecord | None:
        runs = self._runs({"tags": _tags({**SERVED_BY, "dagster/partition": partition})}, limit=1)
        return runs[0] if runs else None

    def start(self, partition: str) -> str:
        return self.client.submit_job_execution(
            JOB, run_config=RUN_CONFIG, tags={**SERVED_BY, "dagster/partition": partition}
        )

    def status(self, run_id: str) -> str:
        return self.client.get_run_status(run_id).value

    def abandon(self, run_id: str) -> None:
        self.client.terminate_run(run_id)  # a queued run is canceled at once; a started one is asked to stop


class InProcessRuns:
    """Runs executed in a thread of this process, recorded in the instance every worker shares."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._instance: Any = None
        self._threads: dict[str, threading.Thread] = {}

    @property
    def instance(self) -> Any:
        """The Dagster instance, opened on first use (a worker that never computes never opens it)."""
        if self._instance is None:
            import dagster as dg

            home = self.settings.dagster_home
            self._instance = (
                dg.DagsterInstance.get() if home else dg.DagsterInstance.from_config(_folder(self.settings))
            )
        return self._instance

    def _records(self, tags: dict[str, str], since: float | None = None, limit: int | None = None) -> list[RunRecord]:
        import dagster as dg

        created_after = datetime.fromtimestamp(since, UTC) if since is not None else None
        records = self.instance.get_run_records(dg.RunsFilter(tags=tags, created_after=created_after), limit=limit)
        return [
            RunRecord(r.dagster_run.run_id, r.dagster_run.status.value, r.create_timestamp.timestamp(),
                      r.update_timestamp.timestamp())
            for r in records
        ]  # fmt: skip

    def recent(self, since: float) -> list[RunRecord]:
        return self._records(SERVED_BY, since=since)

    def last_for(self, partition: str) -> RunRecord | None:
        runs = self._records({**SERVED_BY, "dagster/partition": partition}, limit=1)
        return runs[0] if runs else None

    def start(self, partition: str) -> str:
        request = uuid.uuid4().hex
        thread = threading.Thread(target=self._run, args=(partition, request), name=f"run-{partition}", daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and thread.is_alive():
            runs = self._records({"weather/api_request": request}, limit=1)
            if runs:
                self._threads[runs[0].run_id] = thread
                return runs[0].run_id
            time.sleep(0.02)
        runs = self._records({"weather/api_request": request}, limit=1)  # a run that ended very fast
        if not runs:
            raise RuntimeError(f"the in-process run for {partition} was never recorded")
        return runs[0].run_id

    def _run(self, partition: str, request: str) -> None:
        """The run, as the webserver would launch it (its executor's run config honoured: no step retries)."""
        from weather_assets import runs  # Dagster's code location loads in the worker that first computes

        tags = {**SERVED_BY, "weather/api_request": request, "dagster/partition": partition}
        runs.execute_job(JOB, self.instance, tags=tags, run_config=RUN_CONFIG)

    def status(self, run_id: str) -> str:
        thread = self._threads.get(run_id)
        if thread is not None and not thread.is_alive():
            self._threads.pop(run_id, None)
        run = self.instance.get_run_by_id(run_id)
        return run.status.value if run else "FAILURE"

    def abandon(self, run_id: str) -> None:
        """An in-process run cannot be stopped: wait for its end (its own timeouts bound it), holding the slot, for
        at most another ``run_timeout_seconds``; then the wait, and so the slot, is given up."""
        thread = self._threads.pop(run_id, None)
        if thread is None:
            return
        thread.join(self.settings.run_timeout_seconds)
        if thread.is_alive():
            raise RuntimeError(f"in-process run {run_id} still going; its slot is released, the run goes on")


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in tags.items()]


def _folder(settings: Settings) -> str:
    folder = dagster_home(settings.data_dir)
    Path(folder).mkdir(parents=True, exist_ok=True)
    return folder


def dagster_runs(settings: Settings) -> DagsterRuns:
    return GraphQLRuns(settings.graphql_url) if settings.graphql_url else InProcessRuns(settings)
