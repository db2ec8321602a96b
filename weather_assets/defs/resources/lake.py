"""The lake: raw KMA answers and hourly feature files, in a local folder or an S3 bucket, with one layout.

Layout under the lake root (keys sort in time order, hours are KST in KMA's ``YYYYMMDDHHMI``):

    raw/asos/202611260900.txt       ASOS lines of the 09:00 KST hour, as received
    raw/pm10/202611260900.txt       PM10 readings of 08:05-09:00 KST, as received
    features/202611260900.parquet   the cleaned hour, one row per station
    arrivals/20261126T001012345678Z-<run id>.json
                                    which feature hours one run wrote, keyed by the (UTC) time it wrote them

`arrivals/` is append-only: every write of feature files adds one object naming the hours written, so the
feature-file sensor lists what arrived since its cursor, whatever hours the files belong to.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

import dagster as dg
import pandas as pd
from pydantic import Field, PrivateAttr

from weather_assets.domain import features
from weather_assets.domain.hours import partition_key
from weather_assets.environment import DATA_DIR, lake_root
from weather_assets.kma.wire import TM_FORMAT

RAW_KINDS = ("asos", "pm10")
ARRIVALS_PREFIX = "arrivals/"
_ARRIVAL_TIME_FORMAT = "%Y%m%dT%H%M%S%fZ"
# A local write's temporary file, beside its object: `.<name>.<16 hex>.tmp`, and the `.<name>.<8 chars>` that
# writes left before they were named so (tempfile's), which a killed write may have left in an older lake.
_TEMPORARY = re.compile(r"^\..+\.(?:txt|parquet|json)\.(?:[0-9a-f]{16}\.tmp|[a-z0-9_]{8})$")


def raw_key(kind: str, hour: datetime) -> str:
    """Key of the raw object of one KST hour; `kind` is ``asos`` or ``pm10``."""
    if kind not in RAW_KINDS:
        raise ValueError(f"raw kind must be one of {RAW_KINDS}, not {kind!r}")
    return f"raw/{kind}/{hour.strftime(TM_FORMAT)}.txt"


def features_key(hour: datetime) -> str:
    """Key of the feature file of one KST hour."""
    return f"features/{hour.strftime(TM_FORMAT)}.parquet"


def forecast_raw_key(issued_at: datetime, point: tuple[int, int], page: int = 1) -> str:
    """Key of one page of KMA's raw forecast answer of one issue (naive KST base time) for one grid point:
    ``{nx}_{ny}.json`` for page 1, ``{nx}_{ny}_page{n}.json`` for a further page n."""
    suffix = "" if page == 1 else f"_page{page}"
    return f"raw/forecast/{issued_at.strftime(TM_FORMAT)}/{point[0]}_{point[1]}{suffix}.json"


def forecast_features_key(issued_at: datetime) -> str:
    """Key of the forecast feature file of one issue."""
    return f"forecasts/{issued_at.strftime(TM_FORMAT)}.parquet"


def arrival_key(written_at: datetime, run_id: str = "") -> str:
    """Key of an arrival record written at `written_at` (UTC); without `run_id`, the prefix of that instant."""
    stamp = written_at.astimezone(UTC).strftime(_ARRIVAL_TIME_FORMAT)
    return f"{ARRIVALS_PREFIX}{stamp}-{run_id}.json" if run_id else f"{ARRIVALS_PREFIX}{stamp}"


def arrival_time(key: str) -> datetime | None:
    """When the arrival record `key` was written (UTC), or None for a key that is not one."""
    stamp = key.removeprefix(ARRIVALS_PREFIX).partition("-")[0]
    try:
        return datetime.strptime(stamp, _ARRIVAL_TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


@dataclass(frozen=True)
class Arrival:
    """One run's write of feature files: the hours, and whether that run predicts them itself."""

    run_id: str
    hours: list[datetime]
    predicted_in_run: bool

    def to_json(self) -> bytes:
        hours = [hour.strftime(TM_FORMAT) for hour in self.hours]
        body = {"run_id": self.run_id, "hours": hours, "predicted_in_run": self.predicted_in_run}
        return json.dumps(body).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Arrival:
        """Parses a record; anything else under `arrivals/` raises `ValueError` saying what is wrong with it.

        The types are checked, not coerced: ``"no"`` is not false and ``null`` is no run id.
        """
        try:
            body = json.loads(data)
        except RecursionError:  # json raises it for nesting deeper than the interpreter's recursion limit
            raise ValueError("its JSON is nested too deeply") from None
        except ValueError as error:
            raise ValueError(f"not JSON ({error})") from None
        if not isinstance(body, dict):
            raise ValueError(f"expected a JSON object, not a {type(body).__name__}")
        for name, kind, described in _ARRIVAL_FIELDS:
            if not isinstance(body.get(name), kind):
                raise ValueError(f"{name} must be {described}, not {body.get(name)!r:.60}")
        return cls(body["run_id"], sorted(_hour(text) for text in body["hours"]), body["predicted_in_run"])


_ARRIVAL_FIELDS = (
    ("run_id", str, "a text"),
    ("hours", list, "a list of YYYYMMDDHHMI texts"),
    ("predicted_in_run", bool, "true or false"),
)


def _hour(text: object) -> datetime:
    """An hour of an arrival record, exactly as `Arrival.to_json` writes it (``YYYYMMDDHHMI``)."""
    if isinstance(text, str):
        with contextlib.suppress(ValueError):
            hour = datetime.strptime(text, TM_FORMAT)
            if hour.strftime(TM_FORMAT) == text:
                return hour
    raise ValueError(f"hours must be a list of YYYYMMDDHHMI texts, not one {text!r:.60}")


class LakeObjectMissingError(LookupError):
    """An object the caller needs is not in the lake."""


class LakeObjectUnreadableError(ValueError):
    """An object is in the lake but cannot be read as what its key holds; writing it again (a rerun) mends it."""


@dataclass(frozen=True)
class Source:
    """A lake object as read: its key and the SHA-256 of its bytes, what a row computed from it names as its
    inputs (the key alone could name a file rewritten since)."""

    key: str
    sha256: str

    @classmethod
    def of(cls, key: str, data: bytes) -> Source:
        return cls(key, hashlib.sha256(data).hexdigest())


@dataclass(frozen=True)
class FeatureHours:
    """What reading some hours' feature files found: the rows of the readable hours, in their order, the object
    each readable hour was read from, and why each unreadable hour could not be read (the error names the hour and
    the object)."""

    frame: pd.DataFrame
    unreadable: dict[datetime, LakeObjectUnreadableError]
    sources: dict[datetime, Source]

    def unreadable_by_partition(self) -> dict[str, str]:
        """The unreadable hours' errors by partition key, for metadata."""
        return {partition_key(hour): str(error) for hour, error in self.unreadable.items()}


class _Store(Protocol):
    def write(self, key: str, data: bytes) -> None: ...
    def read(self, key: str) -> bytes: ...
    def uri(self, key: str) -> str: ...
    def list(self, prefix: str, start_after: str) -> Iterator[str]: ...


class _LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._swept: set[Path] = set()  # folders rid of killed writes' temporary files by this store

    def write(self, key: str, data: bytes) -> None:
        """Write, fsync, then rename: a reader (or the sensor) never sees half a file, and after a crash the object
        is the old one or the new one, never an empty one. The folder is fsynced too, so the rename lasts."""
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent not in self._swept:
            _remove_abandoned(path.parent)
            self._swept.add(path.parent)
        handle, temporary = _new_temporary(path)
        with handle:
            try:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
                os.replace(temporary, path)
            except BaseException:
                temporary.unlink(missing_ok=True)
                raise
        _fsync_folder(path.parent)

    def read(self, key: str) -> bytes:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            raise LakeObjectMissingError(f"{self.uri(key)} does not exist") from None
        except OSError as error:
            raise LakeObjectUnreadableError(f"{self.uri(key)} cannot be read: {error.strerror or error}") from None

    def uri(self, key: str) -> str:
        return str((self.root / key).resolve())

    def list(self, prefix: str, start_after: str) -> Iterator[str]:
        folder = self.root / prefix
        if not folder.is_dir():
            return
        names = sorted(entry.name for entry in os.scandir(folder) if entry.is_file() and entry.name[0] != ".")
        for name in names:
            key = f"{prefix}{name}"
            if key > start_after:
                yield key


def _new_temporary(path: Path) -> tuple[BinaryIO, Path]:
    """A new hidden file beside `path`, created as any file of this process is (its mode is 0o666 less the umask),
    and locked until it is closed: the kernel drops the lock of a killed process, so `_remove_abandoned` tells a
    killed write's file from a write in progress."""
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.path.samestat(os.fstat(fd), os.stat(temporary)):
                return os.fdopen(fd, "wb"), temporary
        except FileNotFoundError:
            pass  # another process's sweep removed it between the open and the lock: take another
        os.close(fd)


def _remove_abandoned(folder: Path) -> None:
    """Removes the temporary files in `folder` that no live writer holds: what killed writes left."""
    for entry in os.scandir(folder):
        if not _TEMPORARY.match(entry.name):
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY)
        except OSError:
            continue  # renamed into place meanwhile, or another user's
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            Path(entry.path).unlink(missing_ok=True)
        except BlockingIOError:
            pass  # a write in progress
        finally:
            os.close(fd)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _S3Store:
    def __init__(self, client: object, bucket: str, prefix: str) -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def write(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def read(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            pass
        raise LakeObjectMissingError(f"{self.uri(key)} does not exist")

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def list(self, prefix: str, start_after: str) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(prefix), StartAfter=self._key(start_after) if start_after else ""
        )
        skip = len(self._key(""))
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"][skip:]


class Lake(dg.ConfigurableResource):
    """Object storage for raw answers and features: a local folder or ``s3://bucket/prefix``.

    Assets call `write` and `read` with lake keys and never learn which one it is. S3 goes through the client of
    dagster-aws's `S3Resource`, configured by boto3's environment (``AWS_ENDPOINT_URL_S3`` for MinIO or a test
    server, the region, the credentials); dagster-aws and boto3 are imported when an s3:// lake first opens, not
    when the code location loads (about 0.7 s that every process would pay).
    """

    url: str | None = Field(default=None, description="Lake root (WEATHER_LAKE_URL); unset: <data_dir>/lake.")
    data_dir: str = Field(default=DATA_DIR, description="Root of local state (WEATHER_DATA_DIR).")
    _opened: _Store | None = PrivateAttr(default=None)

    @property
    def root(self) -> str:
        """The lake root in effect."""
        return self.url or lake_root(self.data_dir)

    def _store(self) -> _Store:
        """The backend, opened once per resource instance (one boto3 client for a whole backfill)."""
        if self._opened is None:
            if self.root.startswith("s3://"):
                bucket, _, prefix = self.root.removeprefix("s3://").partition("/")
                if not bucket:
                    raise ValueError(f"WEATHER_LAKE_URL {self.root!r} names no bucket (expected s3://bucket/prefix)")
                from dagster_aws.s3 import S3Resource

                self._opened = _S3Store(S3Resource().get_client(), bucket, prefix.strip("/"))
            else:
                self._opened = _LocalStore(Path(self.root))
        return self._opened

    def write(self, key: str, data: bytes) -> str:
        """Store `data` under `key` (replacing any object there) and return its URI."""
        store = self._store()
        store.write(key, data)
        return store.uri(key)

    def read(self, key: str) -> bytes:
        """The object under `key`; `LakeObjectMissingError` names it when absent."""
        return self._store().read(key)

    def uri(self, key: str) -> str:
        """Where `key` lives, for metadata and messages."""
        return self._store().uri(key)

    def read_features(self, hours: Sequence[datetime], *, skip_missing: bool = False) -> pd.DataFrame:
        """One feature frame of `hours`, in their order, for readers that need every hour: as `read_feature_hours`,
        and unreadable hours raise `LakeObjectUnreadableError` naming each hour and its object."""
        read = self.read_feature_hours(hours, skip_missing=skip_missing)
        if read.unreadable:
            raise LakeObjectUnreadableError("; ".join(map(str, read.unreadable.values())))
        return read.frame

    def read_feature_hours(self, hours: Sequence[datetime], *, skip_missing: bool = False) -> FeatureHours:
        """The feature rows of `hours` that can be read, in their order, and why each other hour cannot be: the way
        every reader of many hours reads them, so one bad file costs its hour only.

        The files join as Arrow tables and convert to pandas once (`features.from_tables`). A missing hour raises
        `LakeObjectMissingError` naming it, or is left out with `skip_missing`.
        """
        tables, unreadable, sources = [], {}, {}
        for hour in hours:
            key = features_key(hour)
            try:
                data = self.read(key)
                tables.append(features.read_table(data))
                sources[hour] = Source.of(key, data)
            except LakeObjectMissingError as missing:
                if not skip_missing:
                    raise LakeObjectMissingError(f"no features for {partition_key(hour)} ({missing})") from None
            except LakeObjectUnreadableError as error:
                unreadable[hour] = LakeObjectUnreadableError(f"features of {partition_key(hour)}: {error}")
            except features.FeatureFileError as error:
                unreadable[hour] = LakeObjectUnreadableError(
                    f"features of {partition_key(hour)}: {self.uri(key)} is not a feature file ({error})"
                )
        return FeatureHours(features.from_tables(tables), unreadable, sources)

    def list(self, prefix: str, start_after: str = "") -> Iterator[str]:
        """Keys of the objects under `prefix` that sort after `start_after`, in key order (S3's StartAfter)."""
        return self._store().list(prefix, start_after)

    def record_arrival(self, arrival: Arrival) -> str:
        """Appends `arrival` to `arrivals/`, keyed by the time now; written after the files it names."""
        return self.write(arrival_key(datetime.now(UTC), arrival.run_id), arrival.to_json())
