"""The pandas side of the platform's tables: frames checked, upserted per dialect, and read back.

The role of a Dagster ``DbTypeHandler``: every function takes the table's `TableSpec` and an open connection (or
none) and leaves transactions and retries to the client. An upsert is ``INSERT ... ON DUPLICATE KEY UPDATE`` on
MySQL and MariaDB, ``INSERT ... ON CONFLICT DO UPDATE`` on SQLite, keyed on the spec's unique key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, sqlite

from weather_assets.domain.tables import RUN_ID, TableSpec


def checked(
    spec: TableSpec, obj: object, window: tuple[datetime, datetime] | None, run_id: str | None = None
) -> pd.DataFrame:
    """The output as the table takes it, stamped with the `run_id` that writes it, or a ValueError that says what is
    wrong with it, before any SQL. Lineage the output lacks is written as NULL."""
    if not isinstance(obj, pd.DataFrame):
        raise TypeError(f"the IO manager stores pandas DataFrames in {spec.name}, not {type(obj).__name__}")
    missing = [column for column in spec.columns if column not in obj.columns]
    extra = [column for column in obj.columns if column not in spec.given]
    if missing or extra:
        lineage = [column for column in spec.given if column not in spec.columns]
        raise ValueError(
            f"rows for {spec.name} must have exactly the columns {list(spec.columns)}, and may have the lineage "
            f"{lineage}; missing {missing}, extra {extra}"
        )
    frame = obj.reindex(columns=list(spec.written))
    frame[RUN_ID] = run_id
    for column in spec.key:
        if column.endswith(("_datetime", "_at")):
            frame[column] = pd.to_datetime(frame[column])
    empty = [column for column in spec.required if frame[column].isna().any()]
    if empty:
        raise ValueError(f"rows for {spec.name} have missing values in required columns {empty}")
    _refuse_infinity(spec, frame)
    _refuse_duplicates(spec, frame)
    if window is not None:
        _refuse_outside(spec, frame, window)
    return frame.sort_values(list(spec.key)).reset_index(drop=True)


def _refuse_infinity(spec: TableSpec, frame: pd.DataFrame) -> None:
    """MySQL stores no infinity and SQLite would: refused on both, so the backends keep the same rows.

    Every numeric column of the table is read as numbers, whatever its dtype: an object column holding inf (or
    "inf") is refused like a float one.
    """
    table = spec.table()
    for column in (name for name in spec.columns if _numeric(table.c[name])):
        numbers = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        infinite = frame[np.isinf(numbers.to_numpy())]
        if len(infinite):
            first = infinite.iloc[0]
            raise ValueError(
                f"{spec.name} rows have {len(infinite)} non-finite value(s) in column {column}, e.g. "
                f"{first[column]} at {_key_text(spec, first)}; MySQL stores no infinity: nothing was written"
            )


def _numeric(column: sa.Column) -> bool:
    try:
        return column.type.python_type in (int, float)
    except NotImplementedError:
        return False


def _refuse_duplicates(spec: TableSpec, frame: pd.DataFrame) -> None:
    """Two rows with one key in one statement: the last would silently win."""
    duplicated = frame[frame.duplicated(list(spec.key), keep=False)]
    if len(duplicated):
        raise ValueError(
            f"{len(duplicated)} {spec.name} rows share ({', '.join(spec.key)}) with another, e.g. "
            f"{_key_text(spec, duplicated.iloc[0])}: one row per key"
        )


def _refuse_outside(spec: TableSpec, frame: pd.DataFrame, window: tuple[datetime, datetime]) -> None:
    """A row outside the partitions being written would land in a partition Dagster does not know was written."""
    times = frame[spec.time_column]
    outside = frame[(times < window[0]) | (times >= window[1])]
    if len(outside):
        raise ValueError(
            f"{len(outside)} {spec.name} rows fall outside the partitions being written ({window[0]} .. "
            f"{window[1]} KST), e.g. {spec.time_column} {outside[spec.time_column].iloc[0]}"
        )


def _key_text(spec: TableSpec, row: pd.Series) -> str:
    """A row's key for a message: ``(prediction_datetime 2026-11-26 09:00:00, station 108)``."""
    names = {"station_id": "station"}
    return "(" + ", ".join(f"{names.get(column, column)} {row[column]}" for column in spec.key) + ")"


@dataclass(frozen=True)
class Upsert:
    """A checked frame as the table's rows, stamped once: a retried transaction writes the very same rows."""

    spec: TableSpec
    table: sa.Table
    columns: dict[str, list[object]]
    stamped: datetime
    times: tuple[datetime, datetime]
    batch_size: int

    @classmethod
    def of(cls, spec: TableSpec, table: sa.Table, frame: pd.DataFrame, batch_size: int) -> Upsert:
        """The frame's rows with created_at and updated_at set to now (UTC), sent `batch_size` rows a statement."""
        now = datetime.now(UTC).replace(tzinfo=None)
        columns = _columns(frame) | {"created_at": [now] * len(frame), "updated_at": [now] * len(frame)}
        times = frame[spec.time_column]
        return cls(spec, table, columns, now, (times.min(), times.max()), batch_size)

    @property
    def rows(self) -> int:
        return len(self.columns[self.spec.key[0]])

    def run(self, connection: sa.Connection) -> int:
        """Upsert the rows in statements of `batch_size`; the number of rows inserted (the others were updated).

        The statement is compiled once and the rows go to the driver as tuples, each column through its type's
        bind processor: SQLAlchemy's per-row parameter handling cost a third of a 100,000-row write. The driver
        sends each batch as one multi-row statement (PyMySQL rewrites an executemany of ``INSERT ... VALUES``).
        """
        dialect = connection.dialect
        names = list(self.columns)
        compiled = upsert_statement(self.spec, self.table, dialect.name).compile(dialect=dialect, column_keys=names)
        order = list(compiled.positiontup or ())
        if sorted(order) != sorted(names):  # every column bound once, positionally: else the fast path is wrong
            raise RuntimeError(f"unexpected parameters in the {self.spec.name} upsert: {order}")
        values = []
        for name in order:
            process = self.table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            column = self.columns[name]
            values.append([None if value is None else process(value) for value in column] if process else column)
        rows = list(zip(*values, strict=True))
        for start in range(0, len(rows), self.batch_size):
            connection.exec_driver_sql(compiled.string, rows[start : start + self.batch_size])
        # A row this write inserted has created_at == stamped; one it updated kept its first created_at.
        inserted = sa.select(sa.func.count()).where(
            self.table.c.created_at == self.stamped, self.table.c[self.spec.time_column].between(*self.times)
        )
        return int(connection.execute(inserted).scalar_one())


def upsert_probe(spec: TableSpec, connection: sa.Connection, table: sa.Table) -> None:
    """Upsert one probe row in a savepoint rolled back at once: proves the grants, writes nothing."""
    now = datetime.now(UTC).replace(tzinfo=None)
    probe = {column: _probe_value(table.c[column]) for column in spec.columns} | {"created_at": now, "updated_at": now}
    savepoint = connection.begin_nested()
    connection.execute(upsert_statement(spec, table, connection.dialect.name), [probe])
    savepoint.rollback()


def _probe_value(column: sa.Column) -> object:
    """A value the column takes: None where it may be empty, else a harmless one of its type."""
    if column.nullable:
        return None
    python_type = column.type.python_type
    return {datetime: datetime(1970, 1, 1), int: 0, float: 0.0, str: "write-probe"}[python_type]


def read(
    spec: TableSpec, connection: sa.Connection, table: sa.Table, start: datetime | None, end: datetime | None
) -> pd.DataFrame:
    """The rows with ``start <= time column < end`` (naive KST; None: unbounded), in key order."""
    query = sa.select(table).order_by(*(table.c[column] for column in spec.key))
    if start is not None:
        query = query.where(table.c[spec.time_column] >= start)
    if end is not None:
        query = query.where(table.c[spec.time_column] < end)
    return pd.read_sql(query, connection)


def upsert_statement(spec: TableSpec, table: sa.Table, dialect: str) -> sa.Insert:
    """The dialect's upsert on the table's unique key; MySQL 8 and MariaDB 10.11 share one form."""
    if dialect in ("mysql", "mariadb"):
        statement = mysql.insert(table)
        return statement.on_duplicate_key_update({column: statement.inserted[column] for column in spec.updated})
    if dialect == "sqlite":
        statement = sqlite.insert(table)
        return statement.on_conflict_do_update(
            index_elements=list(spec.key), set_={column: statement.excluded[column] for column in spec.updated}
        )
    raise ValueError(f"no upsert for the {dialect} dialect")


def _columns(frame: pd.DataFrame) -> dict[str, list[object]]:
    """Columns as plain Python values, NaN as None, built column by column (a 100,000-row write spends real time
    here)."""
    columns: dict[str, list[object]] = {}
    for name, values in frame.items():
        if pd.api.types.is_datetime64_any_dtype(values):
            columns[name] = list(values.array.to_pydatetime())
        elif pd.api.types.is_float_dtype(values):
            columns[name] = [None if value != value else value for value in values.tolist()]  # NaN != NaN
        else:
            columns[name] = [None if pd.isna(value) else value for value in values.tolist()]
    return columns
