"""The hot endpoints' answers, kept in each worker process until their table changes.

The newest hour changes about once an hour, yet every request read the database. Now each table is asked, at
most once every `FRESH_SECONDS` per worker, for its version: its newest `updated_at` and its newest hour (the
forecasts: issue), two index lookups, for SQLite the file read, and the lineage columns it is read without (a
table not yet migrated). A changed version drops every answer
kept from that table; an answer is otherwise served as it was read.

The bound, `FRESH_SECONDS`: an answer reflects every write committed more than `FRESH_SECONDS` (plus that
query's own time) before the request. A new hour raises the newest hour; a rewrite of stored rows raises the
newest `updated_at`, the time the writer stamped its rows. A write committed long after it was stamped (a
transaction retried for minutes) while a later-stamped one already committed changes neither: `LIFETIME_SECONDS`
bounds that case, as no answer is kept longer.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from weather_assets.api.answers import Answer
from weather_assets.api.store import Store

FRESH_SECONDS = 1.0  # the bound: how much older than the table an answer may be
LIFETIME_SECONDS = 60.0  # the longest an answer is kept, whatever the version says
MAX_ANSWERS = 4096  # per worker: a few MB; the least recently used answer goes first


class Miss(Exception):
    """The answer is not one to keep (a missing hour): the request takes the path that reads or computes it."""


class Watch:
    """One table's version as this worker last saw it; `generation` counts its changes."""

    def __init__(self, store: Store, table: str) -> None:
        self.store, self.table = store, table
        self.generation = 0
        self.version: tuple[Any, ...] | None = None
        self._asked = -math.inf  # monotonic time the last completed check started
        self._lock = asyncio.Lock()

    @property
    def newest(self) -> datetime | None:
        """The table's newest hour (the forecasts': issue) as last seen."""
        return self.version[-1] if self.version else None

    async def current(self) -> int:
        """The generation in effect, the table asked at most `FRESH_SECONDS` ago (one request asks; those arriving
        meanwhile wait for its answer)."""
        if time.monotonic() - self._asked < FRESH_SECONDS:
            return self.generation
        async with self._lock:
            started = time.monotonic()
            if started - self._asked >= FRESH_SECONDS:
                version = await self.store.version(self.table)
                if version != self.version:
                    self.version, self.generation = version, self.generation + 1
                self._asked = started
        return self.generation


@dataclass(frozen=True, slots=True)
class _Kept:
    answer: Answer
    generation: int  # the table's, read in
    built: float  # monotonic time its read started
    expires: datetime | None  # by the service's clock

    def valid(self, generation: int, now: datetime) -> bool:
        return (
            self.generation == generation
            and time.monotonic() - self.built < LIFETIME_SECONDS
            and (self.expires is None or now < self.expires)
        )


class AnswerCache:
    """At most `MAX_ANSWERS` answers, each valid while its table's generation is the one it was read in, for
    `LIFETIME_SECONDS` at most, and before its `expires` by the service's clock (if it has one)."""

    def __init__(self) -> None:
        self._kept: OrderedDict[Hashable, _Kept] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    async def get(
        self, key: Hashable, watch: Watch, now: datetime, build: Callable[[], Awaitable[tuple[Answer, datetime | None]]]
    ) -> Answer:
        """The kept answer for `key`, else `build`'s (answer, expires), kept; `build` raises `Miss` (or an error
        answer) for what is not to be kept."""
        generation = await watch.current()
        kept = self._kept.get(key)
        if kept is not None and kept.valid(generation, now):
            self._kept.move_to_end(key)
            return kept.answer
        started = time.monotonic()
        answer, expires = await build()
        self._kept[key] = _Kept(answer, generation, started, expires)
        self._kept.move_to_end(key)
        if len(self._kept) > MAX_ANSWERS:
            self._kept.popitem(last=False)
        return answer
