"""The platform's tables, split as dagster-duckdb is: `database` (the `ComfortDatabase` resource readers and writers
take), `io_manager` (the thin `TablesIOManager` on it), `client` (engine, transactions, retries) and `frames` (the
DataFrame checked, upserted, read back).
"""

from weather_assets.defs.resources.predictions_db.client import DatabaseWriteError
from weather_assets.defs.resources.predictions_db.database import ComfortDatabase
from weather_assets.defs.resources.predictions_db.io_manager import TablesIOManager, stored_in, tables_resources

__all__ = ["ComfortDatabase", "DatabaseWriteError", "TablesIOManager", "stored_in", "tables_resources"]
