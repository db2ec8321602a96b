"""The read API's view of Dagster: start an `ingest_and_predict` run for an hour, follow it, and read back the
runs it started (tagged ``weather/served_by: api``), which are the deployment's shared memory of how many runs
the API launched lately and which hours failed.

Two ways, one interface: through the webserver's GraphQL API (``DAGSTER_GRAPHQL_URL``, the full stack), or in
a child process of the API's worker on the instance in ``DAGSTER_HOME`` (else ``<data_dir>/dagster``, shared by
the workers).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import requests

from weather_assets.api.settings import Settings
from weather_assets.environment import dagster_home

if TYPE_CHECKING:
    import dagster as dg

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
# A run's own process: a new interpreter (a fork would copy the worker's event loop and threads), niced so that on
# a busy machine the serving workers come first, and recorded by Dagster within RECORD_WAIT_SECONDS (it imports the
# code location first: about 3 s on an idle 2-core machine).
CHILD = "import sys; from weather_assets.api.dagster_runs import execute; execute(sys.argv[1], sys.argv[2])"
RUN_NICENESS = 10
RECORD_WAIT_SECONDS = 30
STOP_SECONDS = 10  # from SIGTERM to SIGKILL for a run abandoned at its timeout


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    status: str  # Dagster's run status: QUEUED, STARTED, SUCCESS, FAILURE, CANCELED, ...
    created: float  # epoch seconds
    updated: float | None  # epoch seconds of the last status change


class DagsterRuns(Protocol):
    def recent(self, since: float) -> list[RunSummary]:
        """The API's runs created after `since` (epoch seconds)."""

    def last_for(self, partition: str) -> RunSummary | None:
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
        self._local = threading.local()

    @property
    def client(self) -> Any:
        """dagster-graphql's client for this thread, made on first use (it asks the webserver for its schema).

        One per thread: its transport holds one connection at a time, so on-demand runs started from two threads
        through one client failed with ``TransportAlreadyConnected``.
        """
        client = getattr(self._local, "client", None)
        if client is None:
            from dagster_graphql import DagsterGraphQLClient

            address = urlsplit(self.url)
            client = self._local.client = DagsterGraphQLClient(
                address.hostname or "127.0.0.1",
                port_number=address.port,
                use_https=address.scheme == "https",
                timeout=GRAPHQL_TIMEOUT,
                path_prefix=address.path.rstrip("/"),
            )
        return client

    def _runs(self, filter_: dict[str, Any], limit: int | None = None) -> list[RunSummary]:
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
            RunSummary(run["runId"], run["status"], run["creationTime"], run["updateTime"]) for run in runs["results"]
        ]

    def recent(self, since: float) -> list[RunSummary]:
        return self._runs({"tags": _tags(SERVED_BY), "createdAfter": since})

    def last_for(self, partition: str) -> RunSummary | None:
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


class ChildProcessRuns:
    """Runs each executed in a child process of this worker, recorded in the instance every worker shares.

    A run imports the code location and executes its steps for seconds of CPU; in a thread of the serving process
    that would hold the GIL and stall the worker's cache hits (a read took 1.3 s). The child runs at a lower
    priority than the workers. Dagster's import and the instance's opening (about a second) happen here, when the
    worker starts, not while it serves.
    """

    def __init__(self, settings: Settings) -> None:
        self.folder = settings.dagster_home or _folder(settings)
        self.instance = _opened(self.folder, Path(settings.data_dir) / "locks")
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    def _records(self, tags: dict[str, str], since: float | None = None, limit: int | None = None) -> list[RunSummary]:
        import dagster as dg

        created_after = datetime.fromtimestamp(since, UTC) if since is not None else None
        records = self.instance.get_run_records(dg.RunsFilter(tags=tags, created_after=created_after), limit=limit)
        return [
            RunSummary(r.dagster_run.run_id, r.dagster_run.status.value, r.create_timestamp.timestamp(),
                      r.update_timestamp.timestamp())
            for r in records
        ]  # fmt: skip

    def recent(self, since: float) -> list[RunSummary]:
        return self._records(SERVED_BY, since=since)

    def last_for(self, partition: str) -> RunSummary | None:
        runs = self._records({**SERVED_BY, "dagster/partition": partition}, limit=1)
        return runs[0] if runs else None

    def start(self, partition: str) -> str:
        request = uuid.uuid4().hex
        tags = {**SERVED_BY, "weather/api_request": request, "dagster/partition": partition}
        process = subprocess.Popen(
            [sys.executable, "-c", CHILD, self.folder, json.dumps(tags)], stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + RECORD_WAIT_SECONDS
        while time.monotonic() < deadline and process.poll() is None:
            runs = self._records({"weather/api_request": request}, limit=1)
            if runs:
                self._processes[runs[0].run_id] = process
                return runs[0].run_id
            time.sleep(0.1)
        runs = self._records({"weather/api_request": request}, limit=1)  # a run that ended very fast
        if not runs:
            process.kill()  # never counted by `recent`: it must not run
            raise RuntimeError(f"the run for {partition} was never recorded (its process: {process.wait()})")
        return runs[0].run_id

    def status(self, run_id: str) -> str:
        process = self._processes.get(run_id)
        if process is not None and process.poll() is not None:
            self._processes.pop(run_id, None)
            self._record_end(run_id)
        run = self.instance.get_run_by_id(run_id)
        return run.status.value if run else "FAILURE"

    def abandon(self, run_id: str) -> None:
        """Stops the run's process (this worker's runs only): SIGTERM interrupts it as Ctrl-C would, so Dagster
        records the run as failed; SIGKILL if it has not ended `STOP_SECONDS` later."""
        process = self._processes.pop(run_id, None)
        if process is None:
            return
        process.terminate()
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._record_end(run_id)

    def _record_end(self, run_id: str) -> None:
        """A run whose process is gone but which Dagster still records as going (the process was killed) failed:
        recorded so, for every worker's back-off."""
        run = self.instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            self.instance.report_run_failed(run, "the read API's run process ended before the run did")


def _opened(folder: str, locks: Path) -> dg.DagsterInstance:
    """The instance at `folder`, opened under a lock file: two workers creating a new instance's SQLite tables at
    once collide ("table ... already exists")."""
    import dagster as dg

    locks.mkdir(parents=True, exist_ok=True)
    with (locks / "dagster-instance.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # held for the opening only, about a second
        return dg.DagsterInstance.from_config(folder)


def execute(folder: str, tags: str) -> None:
    """A run, in the process `ChildProcessRuns.start` started (`tags` in JSON): as the webserver would launch it (its
    executor's run config honoured: no step retries), niced below the serving workers, SIGTERM handled as Ctrl-C."""
    os.nice(RUN_NICENESS)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    import dagster as dg

    from weather_assets import runs  # the code location, loaded in this process only

    with dg.DagsterInstance.from_config(folder) as instance:
        runs.run_job_here(JOB, instance, tags=json.loads(tags), run_config=RUN_CONFIG)


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in tags.items()]


def _folder(settings: Settings) -> str:
    folder = dagster_home(settings.data_dir)
    Path(folder).mkdir(parents=True, exist_ok=True)
    return folder


def dagster_runs(settings: Settings) -> DagsterRuns:
    return GraphQLRuns(settings.graphql_url) if settings.graphql_url else ChildProcessRuns(settings)
