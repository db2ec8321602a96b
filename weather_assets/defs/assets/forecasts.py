"""Forecast stage: KMA's short-term forecast, per issue, to comfort forecasts per station and forecast hour."""

import io
from datetime import datetime, timedelta

import dagster as dg
import pandas as pd

from weather_assets.defs.assets.ingest import REWRITE
from weather_assets.defs.assets.metadata import bar_chart, comfort_row, path_list, rain_metadata, table_schema
from weather_assets.defs.assets.model import comfort_model
from weather_assets.defs.failures import materialize_first
from weather_assets.defs.partitions import forecast_issues, kst_window
from weather_assets.defs.resources.kma_client import KMAClient, KMAError, KMAForecastTooLong, KMAForecastUnpublished
from weather_assets.defs.resources.lake import (
    Lake,
    LakeObjectMissingError,
    Source,
    forecast_features_key,
    forecast_raw_key,
)
from weather_assets.defs.resources.model_registry import ModelRegistry
from weather_assets.defs.resources.predictions_db import stored_in
from weather_assets.domain import features
from weather_assets.domain.hours import kst_now, partition_key
from weather_assets.domain.tables import FORECASTS
from weather_assets.kma import forecast

# How far back the latest observed PM10 and pressure are looked for, before the issue.
CARRY_HOURS = 6
# A spent daily quota (code 22): ask again this much later, this many times, before the run fails.
QUOTA_RETRY_SECONDS = 1800
QUOTA_RETRIES = 4


def _issue(context: dg.AssetExecutionContext) -> datetime:
    """The partition's issue time, naive KST."""
    return kst_window(context.partition_time_window)[0]


@dg.asset(partitions_def=forecast_issues, group_name="forecast", kinds={"python", "json"})
def kma_forecasts(context: dg.AssetExecutionContext, kma: KMAClient, lake: Lake) -> dg.MaterializeResult:
    """KMA's short-term forecast (단기예보, getVilageFcst) of the partition's issue, as received under
    `raw/forecast/`: per grid point of the configured stations, every page of its answer, one JSON object each
    (`{nx}_{ny}.json`, then `{nx}_{ny}_page2.json`, ...: an issue reaching five days can exceed 1000 rows).

    An issue KMA does not serve yet (it does about ten minutes after the base time) is asked for again every
    `publication_poll_seconds` until `publication_wait_minutes` past that time (resource `kma`); a spent daily
    quota (code 22) is asked for again every half hour, four times. An issue older than the three days KMA serves
    fails at once and is not retried (that forecast is gone), and so does any other error code, named as KMA
    answered it, and an issue longer than `max_forecast_pages` pages.
    """
    issued = _issue(context)
    try:
        answers = kma.fetch_forecast(issued, kma.forecast_points())
    except KMAForecastTooLong as error:
        raise dg.Failure(
            f"{error}: set a higher max_forecast_pages on the kma resource to read it", allow_retries=False
        ) from None
    except KMAError as error:
        if error.code is None:
            raise  # KMA unreachable: the job's retry policy tries again
        raise _refused(context, kma, issued, error) from None
    uris = [
        lake.write(forecast_raw_key(issued, point, number), body)
        for point, pages in answers.items()
        for number, body in enumerate(pages, start=1)
    ]
    totals = {point: forecast.read_answer(pages[0]).total_count for point, pages in answers.items()}
    return dg.MaterializeResult(
        metadata={
            "source": kma.source,
            "issued_at": partition_key(issued),
            "grid_points": dg.MetadataValue.text(
                "; ".join(f"{nx},{ny}: {totals[nx, ny]} items in {len(answers[nx, ny])} page(s)" for nx, ny in answers)
            ),
            "total_count": sum(totals.values()),
            "pages": len(uris),
            "bytes": sum(len(body) for pages in answers.values() for body in pages),
            "objects": path_list(uris),
        }
    )


def _refused(context: dg.AssetExecutionContext, kma: KMAClient, issued: datetime, error: KMAError) -> Exception:
    """What KMA's error code means for the run: a retry now or later, or a failure that retrying cannot fix."""
    key, now = partition_key(issued), kst_now()
    if forecast.too_old(issued, now):
        return dg.Failure(
            f"KMA no longer serves the forecast issued at {key} KST: it serves only the last three days of "
            f"issues ({error}), so this one cannot be fetched any more: leave it out of the backfill",
            allow_retries=False,
        )
    if isinstance(error, KMAForecastUnpublished):
        due = issued + forecast.PUBLICATION_DELAY
        given_up = due + timedelta(minutes=kma.publication_wait_minutes)
        if now < given_up:
            wait = kma.publication_poll_seconds
            context.log.info(f"KMA does not serve the {key} issue yet; asking again in {wait} s")
            tries = kma.publication_wait_minutes * 60 // max(wait, 1) + 1
            return dg.RetryRequested(max_retries=tries, seconds_to_wait=wait)
        return dg.Failure(
            f"KMA has not published the forecast issued at {key} KST, due from {due:%H:%M}, by "
            f"{partition_key(given_up)} ({error}); nothing was stored: materialize the partition again once KMA "
            "serves it",
            allow_retries=False,
        )
    if error.code == forecast.QUOTA_EXCEEDED:
        context.log.warning(f"KMA's daily quota is spent ({error}); asking again in {QUOTA_RETRY_SECONDS} s")
        return dg.RetryRequested(max_retries=QUOTA_RETRIES, seconds_to_wait=QUOTA_RETRY_SECONDS)
    return dg.Failure(
        f"KMA refused the forecast issued at {key} KST with result code {error.code}: {error}", allow_retries=False
    )


@dg.asset(deps=[kma_forecasts], partitions_def=forecast_issues, group_name="forecast", kinds={"pandas", "parquet"})
def forecast_features(context: dg.AssetExecutionContext, kma: KMAClient, lake: Lake) -> dg.MaterializeResult:
    """The issue's forecast as model inputs: one row per configured station and forecast hour, one parquet file
    per issue under `forecasts/`.

    Temperature, humidity, wind speed and precipitation (PCP's text as millimetres, `forecast.parse_pcp`) are
    KMA's forecast for the station's grid point, read from every stored page of its answer. A value of no known
    form (a new PCP wording, "nan") is missing for its hour, logged as a warning and counted
    (`unreadable_values`) instead of failing the issue; the raw answer keeps it. The forecast has no PM10 and no
    pressure: each station's latest observed values in the `CARRY_HOURS` hours up to the issue are carried to
    every forecast hour (missing when none was observed; an hour whose feature file cannot be read is passed over,
    with a warning); `forecast_inputs` and `carried_inputs` say which is
    which on every row.
    """
    issued = _issue(context)
    answers, unreadable = [], []
    for point in kma.forecast_points():
        try:
            answers.append(forecast.parse_forecast(_stored_pages(lake, issued, point), issued, point, unreadable))
        except LakeObjectMissingError as missing:
            raise materialize_first("kma_forecasts", missing) from None
        except forecast.KMAForecastError as error:
            raise dg.Failure(f"a stored forecast answer cannot be read: {error}", allow_retries=False) from None
    for problem in unreadable:
        context.log.warning(f"{problem}: read as missing")
    carried = _latest_observed(context, lake, issued)
    rows = features.from_forecast(pd.concat(answers, ignore_index=True), carried, kma.station_ids())
    buffer = io.BytesIO()
    rows.to_parquet(buffer, index=False)
    uri = lake.write(forecast_features_key(issued), buffer.getvalue())
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(rows),
            "dagster/column_schema": table_schema(rows),
            "forecast_hours": int(rows["observed_at"].nunique()),
            "lead_hours": f"{rows['lead_hours'].min()} .. {rows['lead_hours'].max()}" if len(rows) else "-",
            "stations_with_carried_pm10": int(rows.groupby("station_id")["pm10"].first().notna().sum()),
            "unreadable_values": len(unreadable),
            **rain_metadata(rows),
            "preview": dg.MetadataValue.md(rows.head(10).to_markdown(index=False)),
            "object": dg.MetadataValue.path(uri),
        }
    )


def _stored_pages(lake: Lake, issued: datetime, point: tuple[int, int]) -> list[bytes]:
    """The stored pages of one issue and point: page 1, then the next ones until their items reach its totalCount."""
    pages = [lake.read(forecast_raw_key(issued, point))]
    first = forecast.read_answer(pages[0], issued, point)
    got = len(first.items)
    while got < first.total_count:
        pages.append(lake.read(forecast_raw_key(issued, point, len(pages) + 1)))
        items = forecast.read_answer(pages[-1], issued, point).items
        if not items:
            break  # kma_forecasts stores no empty page; a count never reached reads what there is
        got += len(items)
    return pages


@dg.asset(
    deps=[forecast_features, comfort_model],
    partitions_def=forecast_issues,
    group_name="forecast",
    io_manager_key="tables_io_manager",
    metadata=stored_in(FORECASTS),
    kinds={"mysql", "pandas"},
    pool="mysql_writes",
)
def weather_forecasts(context: dg.AssetExecutionContext, lake: Lake, model_registry: ModelRegistry) -> pd.DataFrame:
    """The comfort forecast (0 to 100) of each station and forecast hour of the issue, by the champion model.

    Table `weather_forecasts`, one row per `(forecast_datetime, station_id, issued_at)`: every issue keeps its own
    forecast of an hour, so the forecast skill can compare lead times. Writing an issue again updates its rows.
    Each row's lineage names the model's MLflow run and the issue's forecast feature file (`forecasts/`) with the
    SHA-256 of the bytes scored: that one object holds every input scored, KMA's forecast read from the issue's raw
    pages and the values carried from observations, which the raw pages alone do not (the run id is the IO
    manager's).
    """
    issued = _issue(context)
    key = forecast_features_key(issued)
    try:
        data = lake.read(key)
    except LakeObjectMissingError as missing:
        raise materialize_first("forecast_features", missing) from None
    rows, source = pd.read_parquet(io.BytesIO(data)), Source.of(key, data)
    champion = model_registry.champion_for_run()
    forecasts = rows.assign(
        forecast_datetime=rows["observed_at"],
        comfort_score=champion.comfort(rows),
        model_name=champion.model_name,
        **champion.lineage,
        input_object=source.key,
        input_sha256=source.sha256,
    )[list(FORECASTS.given)]
    context.add_output_metadata({"station_108": _forecast_chart(forecasts, 108)})
    return forecasts


def _latest_observed(context: dg.AssetExecutionContext, lake: Lake, issued: datetime) -> pd.DataFrame:
    """Each station's latest observed PM10 and pressure in the hours up to the issue (one row per station); an hour
    whose feature file cannot be read is passed over, with a warning, as one never observed is."""
    hours = [issued - timedelta(hours=offset) for offset in range(CARRY_HOURS - 1, -1, -1)]
    read = lake.read_feature_hours(hours, skip_missing=True)
    for error in read.unreadable.values():
        context.log.warning(f"{error}: its PM10 and pressure are not carried. {REWRITE}.")
    observed = read.frame.sort_values("observed_at")
    latest = observed.groupby("station_id")[["pm10", "pressure"]].last()  # last non-missing value of each
    return latest.reset_index()


def _forecast_chart(forecasts: pd.DataFrame, station_id: int) -> dg.MetadataValue:
    """A Markdown bar chart of one station's forecast hours: the issue's story at a glance."""
    hours = forecasts[forecasts["station_id"] == station_id].sort_values("forecast_datetime").head(48)
    rows = [
        comfort_row([partition_key(row.forecast_datetime), f"{row.lead_hours} h"], row.comfort_score)
        for row in hours.itertuples()
    ]
    return bar_chart(["forecast hour", "lead", "score", "label"], rows, right={"lead", "score"})
