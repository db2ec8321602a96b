"""Ingest stage: KMA's raw answers into the lake, then the cleaned hourly feature files."""

import time
from datetime import datetime, timedelta

import dagster as dg
from pydantic import Field

from weather_assets.defs import checks
from weather_assets.defs.assets.metadata import path_list, rain_metadata, table_schema
from weather_assets.defs.failures import materialize_first
from weather_assets.defs.partitions import hourly, kst_hours
from weather_assets.defs.resources.kma_client import KMAClient, RawHours
from weather_assets.defs.resources.lake import (
    Arrival,
    Lake,
    LakeObjectMissingError,
    LakeObjectUnreadableError,
    features_key,
    raw_key,
)
from weather_assets.domain import features
from weather_assets.domain.hours import TIMEZONE, kst_now, partition_key
from weather_assets.kma import wire

# What an operator does about a feature file that cannot be read: the asset that wrote it writes it again.
REWRITE = (
    "To rewrite a corrupt hour, materialize weather_features for it (with kma_observations if its raw objects "
    "cannot be read either)"
)
_REFETCH = "To fetch it again from KMA, materialize kma_observations and weather_features for {hour}"


def _hours(context: dg.AssetExecutionContext) -> list[datetime]:
    return kst_hours(context.partition_time_window)


class ObservationsConfig(dg.Config):
    """How a run treats an hour KMA has not published yet."""

    wait_for_publication: bool = Field(
        default=True,
        description="Ask KMA again while it may still publish the hour (the schedule); false fails at once (the API).",
    )


@dg.asset(
    partitions_def=hourly,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="ingest",
    kinds={"python", "text"},
)
def kma_observations(
    context: dg.AssetExecutionContext, config: ObservationsConfig, kma: KMAClient, lake: Lake
) -> dg.MaterializeResult:
    """KMA's ASOS and PM10 answers for each hour, kept as received under `raw/`, one object per hour and kind.

    Any hour can be re-parsed from here without calling KMA again. A range of hours is fetched with KMA's
    range endpoints and still stored hour by hour, so a backfill leaves the same objects as hourly runs.
    An hour KMA has not published yet is asked for again every `publication_poll_seconds` while KMA may still
    publish it (`publication_wait_minutes` after the hour), so the hourly run lands the hour within one poll of
    its publication; past that (or at once, without `wait_for_publication`), the run fails and stores nothing
    rather than an empty hour.
    """
    hours = _hours(context)
    _check_stations(kma)
    raw = _published(context, kma, hours, config.wait_for_publication)
    for number, line in raw.malformed:
        context.log.warning(f"KMA answer line {number} has no readable time or station, not stored: {line[:80]!r}")
    uris: list[str] = []
    size = 0
    for hour in hours:
        for kind, body in (("asos", raw.asos[hour]), ("pm10", raw.pm10[hour])):
            uris.append(lake.write(raw_key(kind, hour), body))
            size += len(body)
    stations_seen = set().union(*raw.reported.values())
    return dg.MaterializeResult(
        metadata={
            "source": kma.source,
            "hours": len(hours),
            "stations_seen": dg.MetadataValue.text(", ".join(map(str, sorted(stations_seen)))),
            "bytes": size,
            "api_calls": raw.calls,
            "malformed_lines": len(raw.malformed),
            "objects": path_list(uris),
        }
    )


@dg.asset(
    deps=[kma_observations],
    partitions_def=hourly,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="ingest",
    kinds={"pandas", "parquet"},
    # Each hour lands between minute 10 (the schedule; KMA publishes then) and a few minutes later: fresh when it
    # was materialized in the 40 minutes before minute 40 of every hour, KST.
    freshness_policy=dg.FreshnessPolicy.cron(
        deadline_cron="40 * * * *", lower_bound_delta=timedelta(minutes=40), timezone=TIMEZONE
    ),
    check_specs=checks.FEATURES_CHECKS,
)
def weather_features(context: dg.AssetExecutionContext, kma: KMAClient, lake: Lake) -> dg.MaterializeResult:
    """The cleaned hourly table: one row per configured station and hour, one parquet file per hour.

    Columns: station_id, station_name, region, observed_at (naive KST), temperature (deg C), humidity (%),
    precipitation (mm fallen in that hour, in every season: the difference of KMA's day totals, see
    `features.precipitation`; missing when KMA gives no usable figure, counted by reason in `precipitation_unknown`),
    pm10 (ug/m3, mean of the hour's 5-minute readings), wind_speed (m/s), pressure (hPa at sea level), ir (KMA's
    code 1819 of the hour: 3 dry; 1, 2, 4 wet). Other sentinels are missing values. A malformed data line
    is skipped and logged; an hour without any readable line fails the run before anything is written.
    Its checks (`checks.FEATURES_CHECKS`) judge the rows it wrote and the raw lines it read, as it holds them, and
    read every file it wrote back from the lake, as training and predictions will.
    """
    hours = _hours(context)
    stations = _check_stations(kma)
    raw: dict[datetime, tuple[bytes, bytes]] = {}
    for hour in hours:
        try:
            raw[hour] = lake.read(raw_key("asos", hour)), lake.read(raw_key("pm10", hour))
        except LakeObjectMissingError as missing:
            raise materialize_first(
                "kma_observations", f"no raw KMA answer for {partition_key(hour)} ({missing})"
            ) from None
        except LakeObjectUnreadableError as error:
            raise dg.Failure(
                f"raw KMA answer for {partition_key(hour)} cannot be read ({error}); nothing was written. "
                f"{_REFETCH.format(hour=partition_key(hour))}",
                allow_retries=False,
            ) from None
    try:
        built = features.build(raw, stations, before=_hour_before(context, lake, hours[0]))
    except features.RawHourError as error:
        hour = partition_key(error.hour)
        raise dg.Failure(
            f"{lake.uri(raw_key(error.kind, error.hour))} ({hour}) cannot be parsed: {error.reason}; nothing was "
            f"written. {_REFETCH.format(hour=hour)}",
            allow_retries=False,
        ) from None
    for hour, lines in built.skipped_lines.items():
        for line in lines:
            context.log.warning(f"{partition_key(hour)}: skipped malformed {line}")
    for hour, count in built.duplicate_lines.items():
        context.log.warning(f"{partition_key(hour)}: KMA reported {count} station line(s) twice; kept one each")
    for hour, count in built.precipitation_conflicts.items():
        context.log.warning(
            f"{partition_key(hour)}: {count} station(s) wrote IR 3 (no precipitation) while RN_DAY rose; "
            "RN_DAY's difference was taken"
        )
    for hour, reasons in built.precipitation_unknown.items():
        counts = ", ".join(f"{n} {reason}" for reason, n in reasons.items())
        context.log.warning(f"{partition_key(hour)}: precipitation unknown at some stations ({counts})")
    files = features.hour_files(built.frame)
    empty = [partition_key(hour) for hour in hours if hour not in files]
    if empty:
        message = f"KMA reported none of the stations {stations} in {', '.join(empty[:5])}; nothing was written"
        raise dg.Failure(message, allow_retries=False)
    uris = [lake.write(features_key(hour), data) for hour, data in files.items()]
    read_back = lake.read_feature_hours(sorted(files))
    # The sensor follows arrivals; a run that also predicts these hours needs no second run from it.
    predicted_here = dg.AssetKey("weather_predictions") in context.job_def.asset_layer.selected_asset_keys
    arrival = lake.record_arrival(Arrival(context.run.run_id, sorted(files), predicted_in_run=predicted_here))
    raw_duplicates = sum(wire.duplicate_lines(asos) for asos, _ in raw.values())
    return dg.MaterializeResult(
        metadata=_features_metadata(built, len(hours), uris, arrival),
        check_results=checks.features_results(
            context, built.frame, raw_duplicates, read_back.unreadable_by_partition()
        ),
    )


def _features_metadata(
    built: features.Features, hours: int, uris: list[str], arrival: str
) -> dict[str, dg.MetadataValue | int]:
    """What a materialization of `weather_features` shows: the table's shape and what ingest dropped or missed."""
    table = built.frame
    return {
        "dagster/row_count": len(table),
        "dagster/column_schema": table_schema(table),
        "hours": hours,
        "null_counts": dg.MetadataValue.json({k: int(v) for k, v in table.isna().sum().items()}),
        "skipped_lines": sum(map(len, built.skipped_lines.values())),
        "duplicate_station_lines": sum(built.duplicate_lines.values()),
        "precipitation_conflicts": sum(built.precipitation_conflicts.values()),
        "precipitation_unknown": dg.MetadataValue.json(_reason_totals(built.precipitation_unknown)),
        **rain_metadata(table),
        "missing_station_hours": dg.MetadataValue.json(
            {partition_key(hour): ids for hour, ids in built.missing_stations.items()}
        ),
        "preview": dg.MetadataValue.md(table.tail(10).to_markdown(index=False)),
        "objects": path_list(uris),
        "arrival": dg.MetadataValue.path(arrival),
    }


def _reason_totals(per_hour: dict[datetime, dict[str, int]]) -> dict[str, int]:
    """Station-hours whose precipitation is unknown, by reason (`features.UNKNOWN_REASONS`), over all hours."""
    return {reason: sum(counts.get(reason, 0) for counts in per_hour.values()) for reason in features.UNKNOWN_REASONS}


def _published(context: dg.AssetExecutionContext, kma: KMAClient, hours: list[datetime], wait: bool) -> RawHours:
    """KMA's answers for `hours`, asked again while some are unpublished and KMA may still publish them."""
    raw = kma.fetch_hours(hours)
    waited = 0
    while (unpublished := raw.unpublished()) and wait and kma.still_due(unpublished, kst_now()):
        if waited == 0:
            context.log.info(
                f"KMA has not published {partition_key(unpublished[0])} yet; asking again every "
                f"{kma.publication_poll_seconds:g} s for up to {kma.publication_wait_minutes:g} minutes after the hour"
            )
        time.sleep(kma.publication_poll_seconds)
        waited += 1
        raw = raw.updated(kma.fetch_hours(unpublished))
    if unpublished:
        raise dg.Failure(
            description=(
                f"KMA has no observation for {len(unpublished)} of {len(hours)} hours (first "
                f"{partition_key(unpublished[0])}, last {partition_key(unpublished[-1])}) at stations {kma.stations}"
                f"{f' after asking {waited + 1} times' if waited else ''}; nothing was stored. KMA publishes an hour "
                f"about ten minutes after it and may publish it until {kma.publication_wait_minutes:g} minutes "
                "after it; an hour it has not published by then is lost: leave it out of the backfill."
            ),
            allow_retries=False,
        )
    if waited:
        context.log.info(f"KMA published the hour after {waited} more asks")
    return raw


def _hour_before(context: dg.AssetExecutionContext, lake: Lake, first: datetime) -> list[bytes]:
    """The raw ASOS object of the hour before `first`, if ingested and readable: `first`'s precipitation is its day
    total minus that hour's (`features.precipitation`). 01:00 starts the day and needs none."""
    if first.hour == 1:
        return []
    before = first - timedelta(hours=1)
    try:
        return [lake.read(raw_key("asos", before))]
    except LakeObjectMissingError:
        return []
    except LakeObjectUnreadableError as error:
        hour = partition_key(before)
        context.log.warning(
            f"raw KMA answer for {hour}, the hour before, cannot be read ({error}): {partition_key(first)} is built "
            f"as if it was never ingested. {_REFETCH.format(hour=hour)}"
        )
        return []


def _check_stations(kma: KMAClient) -> list[int]:
    """The configured stations, or a failure that no retry can mend."""
    try:
        return kma.station_ids()
    except ValueError as error:
        raise dg.Failure(str(error), allow_retries=False) from None
