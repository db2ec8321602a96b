"""The tables' IO manager: an asset's output is upserted, in one transaction, into the table the asset declares.

A thin layer on `ComfortDatabase`, as dagster-duckdb's IO manager is on its resource: it reads the table from the
asset's definition metadata (`stored_in`) and the partitions from the Dagster context, and leaves connections,
checks and upserts to the database resource. Nothing here knows one table from another.
"""

# No `from __future__ import annotations` here: Dagster reads the `database` field's annotation as a class to see
# a nested resource (a string annotation refuses `ComfortDatabase.configure_at_launch()`).
from datetime import datetime

import dagster as dg
import pandas as pd

from weather_assets.defs.partitions import kst_window
from weather_assets.defs.resources.predictions_db.database import ComfortDatabase, Upserted
from weather_assets.domain.hours import partition_key
from weather_assets.domain.tables import TableSpec

TABLE_KEY = "weather/table"


def stored_in(spec: TableSpec) -> dict[str, str]:
    """Definition metadata for an asset whose output the IO manager upserts into `spec`'s table."""
    return {TABLE_KEY: spec.name}


class TablesIOManager(dg.ConfigurableIOManager):
    """Upserts an asset's DataFrame for a partition or a range of partitions into the table its definition
    metadata names (`stored_in`), through the `database` resource, each row naming the run that wrote it
    (``dagster_run_id``); tables are never loaded as inputs."""

    database: ComfortDatabase

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        table = context.definition_metadata.get(TABLE_KEY)
        if table is None:
            asset = context.asset_key.to_user_string() if context.has_asset_key else "the output"
            raise dg.Failure(
                f"{asset} names no table: declare metadata=stored_in(<its TableSpec>) on the asset",
                allow_retries=False,
            )
        written = self.database.upsert(table, obj, _window(context), run_id=context.run_id)
        first_key, last_key = _keys(context, written)
        shown = written.frame[list(written.spec.columns)]  # the lineage's hashes and ids would crowd the preview
        context.add_output_metadata(
            {
                "rows_inserted": written.inserted,
                "rows_updated": written.updated,
                "dagster/row_count": len(written.frame),
                "partition_range": f"{first_key} .. {last_key}",
                "table": written.where,
                "preview": dg.MetadataValue.md(shown.head(12).to_markdown(index=False)),
            }
        )

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        """Refused: the tables are not loaded as inputs. A reader depends on the asset (``deps=``) and reads the
        range it needs with the database resource's `rows`, so no run loads a whole table by accident."""
        asset = context.asset_key.to_user_string() if context.has_asset_key else "a table"
        raise dg.Failure(
            f"{asset} is not loaded as an input: depend on it with deps= and read the hours needed with the "
            "database resource's rows(table, start, end)",
            allow_retries=False,
        )


def _window(context: dg.OutputContext) -> tuple[datetime, datetime] | None:
    return kst_window(context.asset_partitions_time_window) if context.has_asset_partitions else None


def _keys(context: dg.OutputContext, written: Upserted) -> tuple[str, str]:
    """The first and last partition written, for the metadata; from the rows when the output is unpartitioned."""
    if context.has_asset_partitions:
        key_range = context.asset_partition_key_range
        return key_range.start, key_range.end
    times = written.frame[written.spec.time_column]
    return (partition_key(times.min()), partition_key(times.max())) if len(times) else ("-", "-")


def tables_resources(database: ComfortDatabase) -> dict[str, ComfortDatabase | TablesIOManager]:
    """The resource keys the assets ask for: readers take `database`, the tables' assets `tables_io_manager`, one
    configured database behind both."""
    return {"database": database, "tables_io_manager": TablesIOManager(database=database)}
