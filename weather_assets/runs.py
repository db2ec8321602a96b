"""Materializations and job runs started in this process, and what they report: the one way the main command, the
read API's fallback (in a process of its own) and the benchmarks run the code location's assets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import dagster as dg

from weather_assets.definitions import defs

if TYPE_CHECKING:
    from dagster_shared.error import SerializableErrorInfo

# The caller reports outcomes itself (the main command's summary, the API's one log line per run); the run's
# full event log is in the instance, and so in the UI when the instance is shared.
QUIET: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def materialize_here(
    selection: dg.AssetSelection | Sequence[dg.AssetsDefinition],
    instance: dg.DagsterInstance,
    *,
    partition_key: str | None = None,
    tags: Mapping[str, str] | None = None,
    run_config: Mapping[str, Any] | None = None,
    resources: Mapping[str, object] | None = None,
) -> dg.ExecuteInProcessResult:
    """The selected assets and their checks, materialized in this process with the code location's resources.

    Through `dg.materialize`, not the jobs: the jobs' step retry policies wait minutes for a late KMA hour, which
    suits the schedule, not a person at a terminal or a request. A range of hours is a single-run backfill: pass
    `partitions.range_tags` as `tags`. Failures are returned, not raised: see `failures`.
    """
    if not isinstance(selection, dg.AssetSelection):
        selection = dg.AssetSelection.assets(*selection)
    return dg.materialize(
        list(defs.assets),
        selection=selection,
        resources={**defs.resources, **(resources or {})},
        instance=instance,
        partition_key=partition_key,
        tags=dict(tags or {}),
        run_config={**QUIET, **(run_config or {})},
        raise_on_error=False,
    )


def job_of(name: str) -> dg.JobDefinition:
    """A job of the code location by name (what `run_job_here` rebuilds the job with)."""
    return defs.resolve_job_def(name)


def run_job_here(
    name: str, instance: dg.DagsterInstance, *, tags: Mapping[str, str], run_config: Mapping[str, Any]
) -> None:
    """One run of a job of the code location in this process, as the UI would launch it.

    Through `dg.execute_job` on the reconstructable job, because `execute_in_process` ignores the executor's run
    config (the read API turns step retries off with it). The outcome is in the instance's run record.
    """
    job = dg.build_reconstructable_job(__name__, job_of.__name__, reconstructable_args=(name,))
    with dg.execute_job(job, instance, run_config={**QUIET, **run_config}, tags=dict(tags)):
        pass


def failures(result: dg.ExecuteInProcessResult) -> list[str]:
    """The failed steps' messages, without Dagster's stack traces or the exceptions' module paths."""
    return [
        f"{event.step_key} failed: {_message(event.step_failure_data.error.cause or event.step_failure_data.error)}"
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.STEP_FAILURE
    ]


def _message(error: SerializableErrorInfo) -> str:
    """An error's text after its class name (``dagster._core.definitions.events.Failure: ...`` says nothing)."""
    prefix, _, text = error.message.partition(": ")
    return text.strip() if prefix.rpartition(".")[2] == error.cls_name else error.message.strip()


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, object]:
    """The last materialization metadata of `asset` in a run, as plain values."""
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    return {key: value.value for key, value in events[-1].materialization.metadata.items()}
