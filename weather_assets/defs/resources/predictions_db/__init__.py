"""The predictions table's IO manager, split as Dagster's table IO managers are: `client` (engine, transactions,
retries), `frames` (the DataFrame checked, upserted, read back) and `io_manager` (configuration, Dagster contexts).
"""

from weather_assets.defs.resources.predictions_db.client import DatabaseWriteError
from weather_assets.defs.resources.predictions_db.io_manager import PredictionsIOManager

__all__ = ["DatabaseWriteError", "PredictionsIOManager"]
