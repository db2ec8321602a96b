"""Software-defined assets, one module per stage.

Two beta APIs are used on purpose, and their warnings silenced here, once, before any asset is defined:
`BackfillPolicy.single_run()` (a month's backfill is one run that calls KMA's range endpoints and writes one
transaction; hour-by-hour runs cost 90x more) and dagster-mlflow, the named MLflow integration, which marks its own
run hook as beta when it is imported. Every other warning still shows.
"""

import warnings

import dagster as dg

warnings.filterwarnings("ignore", message="Parameter `backfill_policy` of function `asset`", category=dg.BetaWarning)
warnings.filterwarnings("ignore", message="Function `_create_mlflow_run_hook`", category=dg.BetaWarning)
