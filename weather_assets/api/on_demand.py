"""Computing a missing recent hour through Dagster: the API's fallback, bounded whatever the request rate.

- Only the most recent hours (``on_demand_hours``: the current and the previous one by default) are ever
  computed; an older missing hour is the operators' to backfill.
- One computation per hour at a time (a lock shared by the workers); at most ``max_computations`` at once
  across all workers (lock slots); at most ``max_runs_per_minute`` runs started per minute per deployment,
  counted from the runs Dagster has recorded (the count and the start happen under one shared lock).
- A failed hour is remembered for ``failure_backoff``: by each worker, and through Dagster's run records by
  every other worker and replica (a run that failed, was canceled, or succeeded without writing the hour).
  Requests in that window start nothing.
- Every wait is bounded: a request waits ``wait_seconds`` at most; a run that has not ended within
  ``run_timeout_seconds`` (queued behind a stopped daemon, say) is abandoned (terminated in Dagster, or its
  process stopped), counted as failed, and its thread and locks are released.

Errors carry a message for clients with no internal text; the details (and the run id) go to the log.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from weather_assets.api.dagster_runs import TERMINAL, DagsterRuns
from weather_assets.api.locks import Locks
from weather_assets.api.settings import Settings
from weather_assets.api.store import sqlite_file
from weather_assets.domain.hours import current_hour, partition_key
from weather_assets.domain.tables import PREDICTIONS

# Under uvicorn's error logger, so its handler and level apply to the API's own lines (uvicorn serves the API).
log = logging.getLogger("uvicorn.error.weather_api")
RATE_WINDOW = 60.0  # seconds: the rate limit's window
BUSY_RETRY_AFTER = 10  # seconds, when no computation slot is free


class Unavailable(Exception):
    """The answer cannot be given now. `str()` is safe for clients; `retry_after` is in whole seconds."""

    def __init__(self, message: str, retry_after: float = 30) -> None:
        super().__init__(message)
        self.retry_after = max(1, round(retry_after))


class OnDemand:
    """The bounded computation of missing recent hours, shared by every request of one worker process."""

    def __init__(self, settings: Settings, engine: sa.Engine, runs: DagsterRuns) -> None:
        self.settings = settings
        self.engine = engine
        self.runs = runs
        self.locks = Locks(engine, Path(settings.data_dir) / "locks")
        self.table = PREDICTIONS.table()
        self.file = sqlite_file(engine.url)
        self._inflight: dict[datetime, Future[None]] = {}
        self._failed: dict[datetime, float] = {}  # hour -> epoch seconds it failed at; hours of the window only
        self._run_ids: dict[datetime, str] = {}  # hour -> the run its computation follows, for the log
        self._guard = threading.Lock()
        # one thread per hour that can be computed, twice over for the hour boundary: a thread is never missing
        self._pool = ThreadPoolExecutor(2 * max(1, settings.on_demand_hours), thread_name_prefix="on-demand")

    def window(self, now_hour: datetime | None = None) -> list[datetime]:
        """The hours that may be computed, newest first."""
        now_hour = now_hour or current_hour()
        return [now_hour - timedelta(hours=offset) for offset in range(self.settings.on_demand_hours)]

    def ensure(self, hour: datetime) -> Future[None]:
        """The one computation of `hour` in this process, started if none is running and none failed lately."""
        with self._guard:
            self._check_backoff(hour)
            running = self._inflight.get(hour)
            if running is not None:
                return running
            running = self._inflight[hour] = self._pool.submit(self._compute, hour)
        # Outside the lock: a computation that already ended runs the callback right here, in this thread, and
        # `_forget` takes the lock (registered under it, that deadlocked the worker's on-demand path for good).
        running.add_done_callback(lambda done: self._forget(hour, done))
        return running

    def _forget(self, hour: datetime, done: Future[None]) -> None:
        with self._guard:
            if self._inflight.get(hour) is done:  # not a later computation of the same hour
                del self._inflight[hour]

    def _check_backoff(self, hour: datetime) -> None:
        failed = self._failed.get(hour)
        if failed is None:
            return
        remaining = failed + self.settings.failure_backoff.total_seconds() - time.time()
        if remaining <= 0:
            self._failed.pop(hour, None)
            return
        raise Unavailable(f"{partition_key(hour)} KST could not be computed lately; retry later", remaining)

    def _remember_failure(self, hour: datetime, at: float | None = None) -> None:
        oldest = self.window()[-1]
        with self._guard:
            self._failed[hour] = at or time.time()
            for gone in [failed for failed in self._failed if failed < oldest]:  # never asked for again
                del self._failed[gone]

    def _compute(self, hour: datetime) -> None:
        try:
            self._compute_once(hour)
        except Unavailable:
            raise
        except Exception as error:  # Dagster or the database away: remembered, so requests do not hammer them
            log.exception("computing %s failed (run %s)", partition_key(hour), self._run_ids.get(hour, "not started"))
            self._remember_failure(hour)
            raise Unavailable(
                f"{partition_key(hour)} KST could not be computed; retry later", self._backoff()
            ) from error
        finally:
            self._run_ids.pop(hour, None)

    def _compute_once(self, hour: datetime) -> None:
        key = partition_key(hour)
        with self.locks.hold(f"weather-hour-{key}", self.settings.wait_seconds) as mine:
            if not mine:
                raise Unavailable(f"{key} KST is being computed; retry shortly", BUSY_RETRY_AFTER)
            if self._has_hour(hour):  # another worker computed it while this one waited
                return
            self._follow_or_start(hour, key)
            if not self._has_hour(hour):
                self._remember_failure(hour)
                log.error("run %s for %s succeeded but wrote no prediction for it", self._run_ids.get(hour), key)
                raise Unavailable(f"{key} KST could not be computed; retry later", self._backoff())

    def _follow_or_start(self, hour: datetime, key: str) -> None:
        """Follows the API's live run for the hour (another worker's, abandoned), else starts one within bounds.

        Called while the hour is not stored: the API's last run for it failed, was canceled, or (succeeded)
        wrote nothing; if it ended within the back-off, the hour is in back-off here too.
        """
        last = self.runs.last_for(key)
        now = time.time()
        if last is not None and last.status in TERMINAL:
            ended = last.updated or last.created
            if now - ended < self._backoff():
                self._remember_failure(hour, ended)
                self._check_backoff(hour)
        if last is not None and last.status not in TERMINAL and now - last.created < self.settings.run_timeout_seconds:
            self._await(hour, key, last.run_id, last.created + self.settings.run_timeout_seconds)
            return
        slots = [f"weather-compute-slot-{n}" for n in range(self.settings.max_computations)]
        with self.locks.any_of(slots) as slot:
            if slot is None:
                raise Unavailable("the platform is computing other hours; retry shortly", BUSY_RETRY_AFTER)
            run_id = self._start(key)
            self._await(hour, key, run_id, time.time() + self.settings.run_timeout_seconds)

    def _start(self, key: str) -> str:
        """Starts a run, if fewer than the limit were started in the last minute (counted and started under a lock)."""
        with self.locks.hold("weather-compute-start", self.settings.wait_seconds) as mine:
            if not mine:
                raise Unavailable("the platform is busy; retry shortly", BUSY_RETRY_AFTER)
            recent = self.runs.recent(time.time() - RATE_WINDOW)
            if len(recent) >= self.settings.max_runs_per_minute:
                oldest = min(run.created for run in recent)
                log.warning("not computing %s: %d runs started in the last minute", key, len(recent))
                raise Unavailable("too many hours are being computed; retry later", oldest + RATE_WINDOW - time.time())
            run_id = self.runs.start(key)
        log.info("computing %s KST in run %s", key, run_id)
        return run_id

    def _await(self, hour: datetime, key: str, run_id: str, deadline: float) -> None:
        self._run_ids[hour] = run_id
        while (status := self.runs.status(run_id)) not in TERMINAL:
            if time.time() >= deadline:
                log.error("run %s for %s did not end within its timeout (%s); abandoning it", run_id, key, status)
                try:
                    self.runs.abandon(run_id)
                except Exception:  # the run may have ended meanwhile, or Dagster be away: nothing else to do
                    log.exception("could not stop run %s", run_id)
                self._remember_failure(hour)
                raise Unavailable(f"{key} KST could not be computed in time; retry later", self._backoff())
            time.sleep(0.5)
        if status != "SUCCESS":
            self._remember_failure(hour)
            log.error("run %s for %s ended %s; see it in Dagster", run_id, key, status)
            raise Unavailable(f"{key} KST could not be computed; retry later", self._backoff())

    def _backoff(self) -> float:
        return self.settings.failure_backoff.total_seconds()

    def _has_hour(self, hour: datetime) -> bool:
        if self.file is not None and not self.file.exists():  # deleted: not to be re-created empty by a look
            return False
        if not sa.inspect(self.engine).has_table(self.table.name):
            return False
        query = sa.select(sa.func.count()).where(self.table.c.prediction_datetime == hour)
        with self.engine.connect() as connection:
            return bool(connection.execute(query).scalar_one())

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
