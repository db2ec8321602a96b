"""The pandas side of the predictions table: frames checked, upserted per dialect, and read back.

The role of a Dagster ``DbTypeHandler``: every function takes an open connection (or none) and leaves
transactions and retries to the client. An upsert is ``INSERT ... ON DUPLICATE KEY UPDATE`` on MySQL and
MariaDB, ``INSERT ... ON CONFLICT DO UPDATE`` on SQLite, keyed on ``(prediction_datetime, station_id)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, sqlite

from weather_assets.domain.predictions_table import KEY, OUTPUT_COLUMNS

# An upsert overwrites these on a row that exists; created_at keeps the time the row was first written.
UPDATED = tuple(column for column in OUTPUT_COLUMNS if column not in KEY) + ("updated_at",)
REQUIRED = ("prediction_datetime", "station_id", "comfort_score", "model_name")


def checked(obj: object, window: tuple[datetime, datetime] | None) -> pd.DataFrame:
    """The output as the table takes it, or a ValueError that says what is wrong with it, before any SQL."""
    if not isinstance(obj, pd.DataFrame):
        raise TypeError(f"the predictions IO manager stores pandas DataFrames, not {type(obj).__name__}")
    missing = [column for column in OUTPUT_COLUMNS if column not in obj.columns]
    extra = [column for column in obj.columns if column not in OUTPUT_COLUMNS]
    if missing or extra:
        raise ValueError(
            f"predictions must have exactly the columns {list(OUTPUT_COLUMNS)}; missing {missing}, extra {extra}"
        )
    frame = obj[list(OUTPUT_COLUMNS)].copy()
    frame["prediction_datetime"] = pd.to_datetime(frame["prediction_datetime"])
    empty = [column for column in REQUIRED if frame[column].isna().any()]
    if empty:
        raise ValueError(f"predictions have missing values in required columns {empty}")
    _refuse_infinity(frame)
    _refuse_duplicates(frame)
    if window is not None:
        _refuse_outside(frame, window)
    return frame.sort_values(list(KEY)).reset_index(drop=True)


def _refuse_infinity(frame: pd.DataFrame) -> None:
    """MySQL stores no infinity and SQLite would: refused on both, so the backends keep the same rows."""
    for column in frame.columns:
        if pd.api.types.is_float_dtype(frame[column]):
            infinite = frame[np.isinf(frame[column].to_numpy())]
            if len(infinite):
                first = infinite.iloc[0]
                raise ValueError(
                    f"predictions have {len(infinite)} non-finite value(s) in column {column}, e.g. "
                    f"{first[column]} at ({first['prediction_datetime']}, station {first['station_id']}); "
                    "MySQL stores no infinity: nothing was written"
                )


def _refuse_duplicates(frame: pd.DataFrame) -> None:
    """Two rows with one key in one statement: the last would silently win."""
    duplicated = frame[frame.duplicated(list(KEY), keep=False)]
    if len(duplicated):
        first = duplicated.iloc[0]
        raise ValueError(
            f"{len(duplicated)} predictions share (prediction_datetime, station_id) with another, e.g. "
            f"({first['prediction_datetime']}, {first['station_id']}): one row per station and hour"
        )


def _refuse_outside(frame: pd.DataFrame, window: tuple[datetime, datetime]) -> None:
    """A row outside the partitions being written would land in a partition Dagster does not know was written."""
    outside = frame[(frame["prediction_datetime"] < window[0]) | (frame["prediction_datetime"] >= window[1])]
    if len(outside):
        raise ValueError(
            f"{len(outside)} predictions fall outside the partitions being written ({window[0]} .. {window[1]} "
            f"KST), e.g. {outside['prediction_datetime'].iloc[0]}"
        )


@dataclass(frozen=True)
class Upsert:
    """A checked frame as the table's rows, stamped once: a retried transaction writes the very same rows."""

    table: sa.Table
    records: list[dict[str, object]]
    stamped: datetime
    hours: tuple[datetime, datetime]
    batch_size: int

    @classmethod
    def of(cls, table: sa.Table, frame: pd.DataFrame, batch_size: int) -> Upsert:
        """The frame's rows with created_at and updated_at set to now (UTC), sent `batch_size` rows a statement."""
        now = datetime.now(UTC).replace(tzinfo=None)
        records = _records(frame.assign(created_at=now, updated_at=now))
        hours = frame["prediction_datetime"]
        return cls(table, records, now, (hours.min(), hours.max()), batch_size)

    def run(self, connection: sa.Connection) -> int:
        """Upsert the rows in statements of `batch_size`; the number of rows inserted (the others were updated)."""
        statement = upsert_statement(self.table, connection.dialect.name)
        for start in range(0, len(self.records), self.batch_size):
            connection.execute(statement, self.records[start : start + self.batch_size])
        # A row this write inserted has created_at == stamped; one it updated kept its first created_at.
        inserted = sa.select(sa.func.count()).where(
            self.table.c.created_at == self.stamped, self.table.c.prediction_datetime.between(*self.hours)
        )
        return int(connection.execute(inserted).scalar_one())


def upsert_probe(connection: sa.Connection, table: sa.Table) -> None:
    """Upsert one probe row in a savepoint rolled back at once: proves the grants, writes nothing."""
    now = datetime.now(UTC).replace(tzinfo=None)
    probe = {column: None for column in OUTPUT_COLUMNS} | {
        "prediction_datetime": datetime(1970, 1, 1),
        "station_id": 0,
        "comfort_score": 0.0,
        "model_name": "write-probe",
        "created_at": now,
        "updated_at": now,
    }
    savepoint = connection.begin_nested()
    connection.execute(upsert_statement(table, connection.dialect.name), [probe])
    savepoint.rollback()


def read(connection: sa.Connection, table: sa.Table, start: datetime | None, end: datetime | None) -> pd.DataFrame:
    """The rows with ``start <= prediction_datetime < end`` (naive KST; None: unbounded), in key order."""
    query = sa.select(table).order_by(*(table.c[column] for column in KEY))
    if start is not None:
        query = query.where(table.c.prediction_datetime >= start)
    if end is not None:
        query = query.where(table.c.prediction_datetime < end)
    return pd.read_sql(query, connection)


def upsert_statement(table: sa.Table, dialect: str) -> sa.Insert:
    """The dialect's upsert on the table's unique key; MySQL 8 and MariaDB 10.11 share one form."""
    if dialect in ("mysql", "mariadb"):
        statement = mysql.insert(table)
        return statement.on_duplicate_key_update({column: statement.inserted[column] for column in UPDATED})
    if dialect == "sqlite":
        statement = sqlite.insert(table)
        return statement.on_conflict_do_update(
            index_elements=list(KEY), set_={column: statement.excluded[column] for column in UPDATED}
        )
    raise ValueError(f"no upsert for the {dialect} dialect")


def _records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """Rows as plain Python values, NaN as None, built column by column (a 100,000-row write spends real time here)."""
    columns: dict[str, list[object]] = {}
    for name, values in frame.items():
        if pd.api.types.is_datetime64_any_dtype(values):
            columns[name] = list(values.array.to_pydatetime())
        elif pd.api.types.is_float_dtype(values):
            columns[name] = [None if value != value else value for value in values.tolist()]  # NaN != NaN
        else:
            columns[name] = [None if pd.isna(value) else value for value in values.tolist()]
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]
