"""The Dagster code location's parts: partitions, assets by stage, checks, jobs, schedules, sensors and the
resources they use. `weather_assets.definitions` gathers them into `defs`.

Two non-GA APIs are used on purpose, and their beta warnings silenced here, once, before any part of the code
location is defined: `BackfillPolicy.single_run()` (a month's backfill is one run that calls KMA's range
endpoints and writes one transaction; hour-by-hour runs cost 90x more) and dagster-mlflow (the named MLflow
integration, which marks its resource, client and run hook as beta). The asset checks use no preview API: the
assets emit them (`weather_assets.defs.checks`). Every other warning still shows.
"""

import warnings

import dagster as dg

warnings.filterwarnings("ignore", message="Parameter `backfill_policy` of function `asset`", category=dg.BetaWarning)
for beta in ("Function `_create_mlflow_run_hook`", "Dagster resource `mlflow_tracking`", "Class `MlFlow`"):
    warnings.filterwarnings("ignore", message=beta, category=dg.BetaWarning)  # dagster-mlflow's own markings
