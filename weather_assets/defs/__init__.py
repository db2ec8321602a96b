"""The Dagster code location's parts: partitions, assets by stage, checks, jobs, schedules, sensors and the
resources they use. `weather_assets.definitions` loads this folder into `defs`: whatever a module here defines
is in the code location.

Warnings that the project's own use of non-GA APIs causes are silenced here, once, before any part of the code
location is defined (the tests apply the same list to each test, as pytest resets filters per test):

- `BackfillPolicy.single_run()`, beta: a month's backfill is one run that calls KMA's range endpoints and writes
  one transaction; hour-by-hour runs cost 90x more.
- dagster-mlflow, the named MLflow integration, marks its resource, client and run hook as beta, and still reads
  two deprecated `InitResourceContext` properties (a DeprecationWarning, shown only where those are shown).

The asset checks use no preview API: the assets emit them (`weather_assets.defs.checks`). Every other warning
still shows.
"""

import warnings

import dagster as dg

QUIETED: tuple[tuple[str, type[Warning]], ...] = (
    ("Parameter `backfill_policy` of function `asset`", dg.BetaWarning),
    ("Function `_create_mlflow_run_hook`", dg.BetaWarning),
    ("Dagster resource `mlflow_tracking`", dg.BetaWarning),
    ("Class `MlFlow`", dg.BetaWarning),
    ("InitResourceContext.dagster_run is deprecated", DeprecationWarning),
    ("InitResourceContext.run_id is deprecated", DeprecationWarning),
)

for message, category in QUIETED:
    warnings.filterwarnings("ignore", message=message, category=category)
