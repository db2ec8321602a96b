"""Asset checks: bad data is caught where it enters, and shown in the UI without stopping unrelated work.

The assets emit their own checks, over the hours of each run, from the data they hold: `weather_features` from the
rows it has just written and KMA's raw lines it read, `weather_predictions` from the table's rows read back with the
`database` resource after the IO manager upserted them (Dagster stores an output before the asset's code resumes).
The checks are not partitioned (partitioned checks are a Dagster preview): each result names the partitions it
judged.
Severity and blocking:
- ERROR and blocking: a duplicate station-hour in the features (it would corrupt every later step of the
  same run). A blocking check that fails fails its asset's step, after the materialization, so it stops the
  downstream steps of its own run only.
- ERROR, not blocking: predictions that are duplicated or outside 0 to 100 (the table is the product; the
  rows are already written, so blocking would stop nothing, but the UI marks them red). A feature file that does
  not read back from the lake (its readers lose that hour only; blocking would stop the run's other hours too).
- WARN: values outside physical ranges, too many missing values, predictions that cover fewer stations
  than the features. Visible, never stopping anything. (A late hour is `weather_features`' freshness policy.)
- WARN or ERROR by how far off: `model_monitoring`'s live error and drift of a day (their docstrings give the
  thresholds). An ERROR there is what `retrain_on_monitoring_error` acts on.
"""

from collections.abc import Callable

import dagster as dg
import pandas as pd

from weather_assets.domain.hours import partition_key
from weather_assets.domain.monitoring import Drift, LiveError, Reference

# Physical bounds of each measurement in Korea, generous enough for records (deg C, %, mm/h, ug/m3, m/s, hPa).
RANGES = {
    "temperature": (-40.0, 45.0),
    "humidity": (0.0, 100.0),
    "precipitation": (0.0, 300.0),
    "pm10": (0.0, 2000.0),
    "wind_speed": (0.0, 75.0),
    "pressure": (900.0, 1080.0),
}
# Largest share of missing values per column; PM10 is missing by design at stations without a dust sensor.
MISSING_SHARE = {
    "temperature": 0.1,
    "humidity": 0.1,
    "precipitation": 0.1,
    "pm10": 0.5,
    "wind_speed": 0.1,
    "pressure": 0.1,
}
KEY = ["observed_at", "station_id"]


def values_in_range(frame: pd.DataFrame) -> dg.AssetCheckResult:
    """Every present measurement lies within its physical range."""
    outside = {
        column: int(((frame[column] < low) | (frame[column] > high)).sum()) for column, (low, high) in RANGES.items()
    }
    bad = {column: count for column, count in outside.items() if count}
    return dg.AssetCheckResult(
        passed=not bad,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "rows": len(frame),
            "outside_range": dg.MetadataValue.json(bad),
            "ranges": dg.MetadataValue.json(RANGES),
        },
    )


def missing_share(frame: pd.DataFrame) -> dg.AssetCheckResult:
    """No column has more missing values than its allowance."""
    shares = {column: round(float(frame[column].isna().mean()), 4) if len(frame) else 0.0 for column in MISSING_SHARE}
    over = {column: share for column, share in shares.items() if share > MISSING_SHARE[column]}
    return dg.AssetCheckResult(
        passed=not over,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"missing_share": dg.MetadataValue.json(shares), "over_allowance": dg.MetadataValue.json(over)},
    )


def one_row_per_station_hour(frame: pd.DataFrame, key: list[str], raw_duplicates: int = 0) -> dg.AssetCheckResult:
    """No (hour, station) appears twice: neither in the rows, nor among KMA's lines before ingest kept one each.

    Duplicate rows are an ERROR (they would spoil what follows); duplicate lines that ingest resolved by its rule
    (docs/kma-data.md) are a WARN: the data is usable, and someone should know KMA sent them."""
    duplicated = frame[frame.duplicated(key, keep=False)]
    return dg.AssetCheckResult(
        passed=duplicated.empty and not raw_duplicates,
        severity=dg.AssetCheckSeverity.ERROR if len(duplicated) else dg.AssetCheckSeverity.WARN,
        metadata={"rows": len(frame), "duplicated_rows": len(duplicated), "duplicate_raw_lines": raw_duplicates},
    )


def reads_back(unreadable: dict[str, str]) -> dg.AssetCheckResult:
    """Every feature file written reads back from the lake as one. A file that does not is named with its hour and
    error (`unreadable_objects`): materializing weather_features for that hour rewrites it."""
    return dg.AssetCheckResult(
        passed=not unreadable,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"unreadable_hours": len(unreadable), "unreadable_objects": dg.MetadataValue.json(unreadable)},
    )


def scores_in_range(rows: pd.DataFrame) -> dg.AssetCheckResult:
    """Every comfort score lies within 0 to 100."""
    outside = rows[(rows["comfort_score"] < 0) | (rows["comfort_score"] > 100) | rows["comfort_score"].isna()]
    return dg.AssetCheckResult(
        passed=outside.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"rows": len(rows), "outside_0_100": len(outside)},
    )


def rows_match_features(rows: pd.DataFrame, feature_rows: pd.DataFrame) -> dg.AssetCheckResult:
    """Each hour has as many predictions as it has feature rows."""
    predicted = rows.groupby("prediction_datetime").size()
    expected = feature_rows.groupby("observed_at").size()
    short = {
        partition_key(hour): {"features": int(count), "predictions": int(predicted.get(hour, 0))}
        for hour, count in expected.items()
        if predicted.get(hour, 0) != count
    }
    return dg.AssetCheckResult(
        passed=not short,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"hours": len(expected), "mismatched_hours": dg.MetadataValue.json(short)},
    )


LIVE_ERROR_WARN, LIVE_ERROR_ERROR = 2.0, 4.0  # times the champion's validation MAE
OUT_OF_RANGE_WARN, OUT_OF_RANGE_ERROR = 0.1, 0.3  # share of a day's present values outside the training range
MISSING_RISE_WARN, MISSING_RISE_ERROR = 0.1, 0.3  # rise of a day's missing rate over the training window's


def _graded(error: bool, warn: bool, metadata: dict[str, object]) -> dg.AssetCheckResult:
    severity = dg.AssetCheckSeverity.ERROR if error else dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(passed=not (error or warn), severity=severity, metadata=metadata)


def live_error_within_bounds(error: LiveError, reference: Reference) -> dg.AssetCheckResult:
    """The champion's MAE against the comfort rule on the day's hours: WARN above 2x its validation MAE, ERROR above
    4x (the model no longer learns what the rule says of today's weather)."""
    ratio = error.mae / max(reference.validation_mae, 1e-9)
    return _graded(
        ratio > LIVE_ERROR_ERROR,
        ratio > LIVE_ERROR_WARN,
        {
            "live_mae": round(error.mae, 4),
            "validation_mae": round(reference.validation_mae, 4),
            "ratio": round(ratio, 3),
        },
    )


def measurements_like_training(drift: dict[str, Drift]) -> dg.AssetCheckResult:
    """Each measurement of the day against the champion's training window. ERROR: a station's sensor stuck (its
    readings did not change all day, which was rare in training), or over 30 % of the values outside the training
    range, or the missing rate 30 points above training's. WARN: over 10 % outside the range, or missing 10 points
    above. PSI is shown, not judged: one day against a month differs by season and hour of day too much for it."""
    stuck = {name: item.stuck_stations for name, item in drift.items() if item.stuck_stations}
    outside = {name: round(item.out_of_range_share, 3) for name, item in drift.items()}
    missing = {name: round(item.missing_rate_change, 3) for name, item in drift.items()}
    return _graded(
        bool(stuck) or max(outside.values()) > OUT_OF_RANGE_ERROR or max(missing.values()) > MISSING_RISE_ERROR,
        max(outside.values()) > OUT_OF_RANGE_WARN or max(missing.values()) > MISSING_RISE_WARN,
        {
            "stuck_stations": dg.MetadataValue.json(stuck),
            "out_of_range_share": dg.MetadataValue.json(outside),
            "missing_rate_change": dg.MetadataValue.json(missing),
        },
    )


def spec(name: str, asset: str, rule: Callable[..., dg.AssetCheckResult], blocking: bool = False) -> dg.AssetCheckSpec:
    """A check of one asset, described in the UI by the rule that decides it."""
    return dg.AssetCheckSpec(name, asset=asset, description=rule.__doc__, blocking=blocking)


FEATURES_CHECKS = [
    spec("features_values_in_range", "weather_features", values_in_range),
    spec("features_missing_share", "weather_features", missing_share),
    spec("features_one_row_per_station_hour", "weather_features", one_row_per_station_hour, blocking=True),
    spec("features_read_back", "weather_features", reads_back),
]
MONITORING_CHECKS = [
    spec("monitoring_live_error", "model_monitoring", live_error_within_bounds),
    spec("monitoring_drift", "model_monitoring", measurements_like_training),
]
PREDICTIONS_CHECKS = [
    spec("predictions_one_row_per_station_hour", "weather_predictions", one_row_per_station_hour),
    spec("predictions_scores_in_range", "weather_predictions", scores_in_range),
    spec("predictions_match_features", "weather_predictions", rows_match_features),
]


def features_results(
    context: dg.AssetExecutionContext, frame: pd.DataFrame, raw_duplicates: int, unreadable: dict[str, str]
) -> list[dg.AssetCheckResult]:
    """The feature checks of the rows `weather_features` wrote, of the lines KMA sent twice in its raw answers, and
    of the files it wrote as read back (`unreadable`: the error of each hour whose file did not read back)."""
    return _named(
        context,
        {
            "features_values_in_range": values_in_range(frame),
            "features_missing_share": missing_share(frame),
            "features_one_row_per_station_hour": one_row_per_station_hour(frame, KEY, raw_duplicates=raw_duplicates),
            "features_read_back": reads_back(unreadable),
        },
    )


def predictions_results(
    context: dg.AssetExecutionContext, rows: pd.DataFrame, feature_rows: pd.DataFrame
) -> list[dg.AssetCheckResult]:
    """The prediction checks of the rows read back from the table, against the feature rows they were scored from."""
    return _named(
        context,
        {
            "predictions_one_row_per_station_hour": one_row_per_station_hour(
                rows, ["prediction_datetime", "station_id"]
            ),
            "predictions_scores_in_range": scores_in_range(rows),
            "predictions_match_features": rows_match_features(rows, feature_rows),
        },
    )


def monitoring_results(
    context: dg.AssetExecutionContext, error: LiveError, drift: dict[str, Drift], reference: Reference
) -> list[dg.AssetCheckResult]:
    """The monitoring checks of a day's live error and drift."""
    return _named(
        context,
        {
            "monitoring_live_error": live_error_within_bounds(error, reference),
            "monitoring_drift": measurements_like_training(drift),
        },
    )


def _named(context: dg.AssetExecutionContext, results: dict[str, dg.AssetCheckResult]) -> list[dg.AssetCheckResult]:
    """Each result named for its check and for the partitions it judged.

    The checks are not partitioned, so the UI shows a result without partitions of its own; its metadata names them.
    An asset that emits checks is never run without them, so every check of the asset has a result.
    """
    keys = context.partition_key_range
    judged = dg.MetadataValue.text(keys.start if keys.start == keys.end else f"{keys.start} to {keys.end}")
    return [
        result._replace(check_name=name, metadata={**result.metadata, "partitions": judged})
        for name, result in results.items()
    ]
