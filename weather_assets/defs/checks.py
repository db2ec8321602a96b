"""Asset checks: bad data is caught where it enters, and shown in the UI without stopping unrelated work.
Severity and blocking:
- ERROR and blocking: a duplicate station-hour in the features (it would corrupt every later step of the
  same run). A blocking check that fails stops the downstream steps of its own run only.
- ERROR, not blocking: predictions that are duplicated or outside 0 to 100 (the table is the product; the
  rows are already written, so blocking would stop nothing, but the UI marks them red).
- WARN: values outside physical ranges, too many missing values, predictions that cover fewer stations
  than the features. Visible, never stopping anything. (A late hour is `weather_features`' freshness policy.)
"""

from collections.abc import Callable, Iterator

import dagster as dg
import pandas as pd

from weather_assets.defs.assets.ingest import weather_features
from weather_assets.defs.assets.predictions import weather_predictions
from weather_assets.defs.partitions import hourly, kst_hours, kst_window
from weather_assets.defs.resources.lake import Lake, LakeObjectMissingError, features_key, raw_key
from weather_assets.defs.resources.predictions_db import PredictionsIOManager
from weather_assets.domain import features, kma_format
from weather_assets.domain.hours import partition_key

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
    (README, "The data") are a WARN: the data is usable, and someone should know KMA sent them."""
    duplicated = frame[frame.duplicated(key, keep=False)]
    return dg.AssetCheckResult(
        passed=duplicated.empty and not raw_duplicates,
        severity=dg.AssetCheckSeverity.ERROR if len(duplicated) else dg.AssetCheckSeverity.WARN,
        metadata={"rows": len(frame), "duplicated_rows": len(duplicated), "duplicate_raw_lines": raw_duplicates},
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


def _features(context: dg.AssetCheckExecutionContext, lake: Lake) -> pd.DataFrame:
    files = []
    for hour in kst_hours(context.partition_time_window):
        try:
            files.append(lake.read(features_key(hour)))
        except LakeObjectMissingError:
            continue  # the hour's own check of weather_features reports it; nothing to compare here
    return features.from_parquet_files(files)


def _raw_duplicates(context: dg.AssetCheckExecutionContext, lake: Lake) -> int:
    """Station lines KMA sent twice in the range's raw ASOS answers, counted before ingest resolved them."""
    count = 0
    for hour in kst_hours(context.partition_time_window):
        try:
            count += kma_format.duplicate_lines(lake.read(raw_key("asos", hour)))
        except LakeObjectMissingError:
            continue
    return count


def _spec(
    name: str, asset: dg.AssetsDefinition, rule: Callable[..., dg.AssetCheckResult], **kwargs: bool
) -> dg.AssetCheckSpec:
    """A check of one hourly asset, described by the rule that decides it."""
    return dg.AssetCheckSpec(name, asset=asset, partitions_def=hourly, description=rule.__doc__, **kwargs)


def _selected(
    context: dg.AssetCheckExecutionContext, results: dict[str, Callable[[], dg.AssetCheckResult]]
) -> Iterator[dg.AssetCheckResult]:
    """The results of the checks selected in this run, each named for its spec."""
    for key in context.selected_asset_check_keys:
        yield results[key.name]()._replace(check_name=key.name, asset_key=key.asset_key)


@dg.multi_asset_check(
    specs=[
        _spec("features_values_in_range", weather_features, values_in_range),
        _spec("features_missing_share", weather_features, missing_share),
        _spec("features_one_row_per_station_hour", weather_features, one_row_per_station_hour, blocking=True),
    ],
    can_subset=True,
)
def features_checks(context: dg.AssetCheckExecutionContext, lake: Lake) -> Iterator[dg.AssetCheckResult]:
    """The feature checks, in one step that reads the range's parquet files once (a backfill's are many)."""
    frame = _features(context, lake)
    yield from _selected(
        context,
        {
            "features_values_in_range": lambda: values_in_range(frame),
            "features_missing_share": lambda: missing_share(frame),
            "features_one_row_per_station_hour": lambda: one_row_per_station_hour(
                frame, KEY, raw_duplicates=_raw_duplicates(context, lake)
            ),
        },
    )


@dg.multi_asset_check(
    specs=[
        _spec("predictions_one_row_per_station_hour", weather_predictions, one_row_per_station_hour),
        _spec("predictions_scores_in_range", weather_predictions, scores_in_range),
        _spec("predictions_match_features", weather_predictions, rows_match_features),
    ],
    can_subset=True,
)
def predictions_checks(
    context: dg.AssetCheckExecutionContext, mysql_io_manager: dg.ResourceParam[PredictionsIOManager], lake: Lake
) -> Iterator[dg.AssetCheckResult]:
    """The prediction checks, in one step that reads the range's rows once."""
    rows = mysql_io_manager.rows(*kst_window(context.partition_time_window))
    yield from _selected(
        context,
        {
            "predictions_one_row_per_station_hour": lambda: one_row_per_station_hour(
                rows, ["prediction_datetime", "station_id"]
            ),
            "predictions_scores_in_range": lambda: scores_in_range(rows),
            "predictions_match_features": lambda: rows_match_features(rows, _features(context, lake)),
        },
    )


feature_checks = [features_checks]
prediction_checks = [predictions_checks]
asset_checks = [*feature_checks, *prediction_checks]
