"""A 200 answer serialized once, and the HTTP response for it: the body with its age spliced in, a weak `ETag`,
`Cache-Control` until its table is next expected to change, and `304 Not Modified` for a matching
`If-None-Match`. Error and on-demand answers are marked `no-store` instead (`app`'s handlers).

Why bytes: a kept answer then costs no pydantic validation or serialization per request, only the splice of
`age_seconds`, the one field that changes with the clock. The `ETag` is computed over everything else, so it is
weak (`W/`): two answers that differ only in their age are the same answer, and a cached copy's age is older by
the cache's `Age`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import pydantic_core
from fastapi import Request, Response
from pydantic import BaseModel

NO_STORE = "no-store"
DUE_MAX_AGE = 30  # seconds: the max-age while the table's next write is due (or overdue): caches ask again soon
STALE_WHILE_REVALIDATE = 60  # seconds a cache may answer with an expired copy while it asks for a new one
_MARK = -1.5e-300  # stands for age_seconds while serializing: no real age looks like it
_MARK_JSON = pydantic_core.to_json(_MARK)


def age(hour: datetime, now: datetime) -> float:
    """Seconds from a stored hour's start to `now` (the service's clock)."""
    return round((now - hour).total_seconds(), 1)


@dataclass(frozen=True, slots=True)
class Answer:
    """A 200 answer's bytes around its `age_seconds` (none when `anchor` is None), its weak ETag, and the service
    clock's time until which caches may keep it (`fresh_until`: its table's next expected change)."""

    head: bytes
    tail: bytes
    etag: str
    anchor: datetime | None
    fresh_until: datetime

    @classmethod
    def of(cls, model: BaseModel, fresh_until: datetime, anchor: datetime | None = None) -> Answer:
        """`model` serialized once; with `anchor`, its `age_seconds` is counted from there at each response."""
        if anchor is None:
            head, tail = model.model_dump_json().encode(), b""
        else:
            marked = model.model_copy(update={"age_seconds": _MARK}).model_dump_json().encode()
            head, found, tail = marked.partition(_MARK_JSON)
            if not found or _MARK_JSON in tail:
                raise ValueError(f"{type(model).__name__} has no single age_seconds to count from {anchor}")
        digest = hashlib.blake2b(head + tail, digest_size=12).hexdigest()
        return cls(head, tail, f'W/"{digest}"', anchor, fresh_until)

    def body(self, now: datetime) -> bytes:
        """The JSON as pydantic writes it, with the age at `now` (a float's repr is its JSON)."""
        if self.anchor is None:
            return self.head
        return b"".join((self.head, repr(age(self.anchor, now)).encode(), self.tail))

    def cache_control(self, now: datetime) -> str:
        """Fresh for caches until the table's next expected change; at least DUE_MAX_AGE once that is due."""
        remaining = int((self.fresh_until - now).total_seconds())
        return f"public, max-age={max(DUE_MAX_AGE, remaining)}, stale-while-revalidate={STALE_WHILE_REVALIDATE}"


def respond(request: Request, answer: Answer, now: datetime) -> Response:
    """The answer at `now`, or a 304 without a body when the client's If-None-Match names its ETag."""
    headers = {"ETag": answer.etag, "Cache-Control": answer.cache_control(now)}
    if _matches(request.headers.get("if-none-match"), answer.etag):
        return Response(status_code=304, headers=headers)
    return Response(answer.body(now), media_type="application/json", headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match's weak comparison: any listed tag (or `*`) that is the ETag, `W/` or not."""
    if not if_none_match:
        return False
    opaque = etag.removeprefix("W/")
    return any(tag.strip() == "*" or tag.strip().removeprefix("W/") == opaque for tag in if_none_match.split(","))
