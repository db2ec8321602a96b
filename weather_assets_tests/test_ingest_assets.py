"""The ingest assets materialized for real: offline generator, local lake and moto's S3 server."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import boto3
import dagster as dg
import pandas as pd
import pytest

from weather_assets.defs.assets.ingest import kma_observations, weather_features
from weather_assets.defs.partitions import range_tags
from weather_assets.defs.resources.kma_client import KMAHubClient
from weather_assets.defs.resources.lake import Arrival, Lake, features_key, raw_key
from weather_assets.defs.resources.offline_kma_client import OfflineKMAClient
from weather_assets.domain import features
from weather_assets.domain.hours import partition_key
from weather_assets.kma import fields, wire
from weather_assets.offline.hub import OfflineKMA
from weather_assets.offline.observations import wet_and_rain
from weather_assets.runs import metadata
from weather_assets_tests.helpers import STATIONS, dagster_materialize, ingest
from weather_assets_tests.kma_hub import FakeHub, HubHandler, status
from weather_assets_tests.scratch import unconfigured_environment

HOUR = datetime(2026, 11, 26, 9)


def local_resources(root: Path, stations: str = STATIONS) -> dict[str, object]:
    return {"kma": OfflineKMAClient(stations=stations), "lake": Lake(data_dir=str(root))}


def local_objects(root: Path) -> dict[str, bytes]:
    """The lake's data objects; `arrivals/` records name the run that wrote them, so two runs' never match."""
    lake = root / "lake"
    files = sorted(path for path in lake.rglob("*") if path.is_file())
    return {str(path.relative_to(lake)): path.read_bytes() for path in files if path.parts[-2] != "arrivals"}


def s3_objects(bucket: str, prefix: str) -> dict[str, bytes]:
    """As `local_objects`, in a bucket."""
    client = boto3.client("s3")
    keys = [
        obj["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for obj in page.get("Contents", [])
        if not obj["Key"].startswith(f"{prefix}/arrivals/")
    ]
    return {key.removeprefix(f"{prefix}/"): client.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def failure(result: dg.ExecuteInProcessResult) -> str:
    """The failed step's error, as the UI shows it."""
    assert not result.success
    event = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    return str(event.step_failure_data.error)


def features_only(
    resources: dict[str, object], instance: dg.DagsterInstance | None = None
) -> dg.ExecuteInProcessResult:
    """Materialize weather_features alone for HOUR, from whatever raw objects the lake holds."""
    return dg.materialize(
        [weather_features],
        resources=resources,
        partition_key=partition_key(HOUR),
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def test_one_hour_writes_raw_objects_and_one_feature_row_per_station(tmp_path: Path) -> None:
    result = ingest(local_resources(tmp_path), HOUR)

    assert result.success
    objects = local_objects(tmp_path)
    assert sorted(objects) == [
        "features/202611260900.parquet",
        "raw/asos/202611260900.txt",
        "raw/pm10/202611260900.txt",
    ]
    frame = features.from_parquet(objects["features/202611260900.parquet"])
    assert list(frame.columns) == list(features.COLUMNS)
    assert frame["station_id"].tolist() == sorted(int(s) for s in STATIONS.split(","))
    assert (frame["observed_at"] == HOUR).all()
    assert frame.loc[frame["station_id"] == 108, ["station_name", "region"]].iloc[0].tolist() == ["Seoul", "Seoul"]
    # stations 100 and 104 have no dust sensor: their PM10 is missing, the others have one
    assert frame.set_index("station_id")["pm10"].isna().to_dict() == {s: s in (100, 104) for s in frame["station_id"]}
    observed = metadata(result, "kma_observations")
    assert observed["source"] == "offline"
    assert observed["stations_seen"] == STATIONS.replace(",", ", ")
    assert observed["bytes"] == len(objects["raw/asos/202611260900.txt"]) + len(objects["raw/pm10/202611260900.txt"])
    assert metadata(result, "weather_features")["dagster/row_count"] == 10
    (record,) = (tmp_path / "lake" / "arrivals").iterdir()  # the sensor's log: this run wrote this hour
    assert Arrival.from_json(record.read_bytes()) == Arrival(result.run_id, [HOUR], predicted_in_run=False)


def test_many_hours_read_back_as_their_rows_in_order(tmp_path: Path) -> None:
    first = HOUR - timedelta(hours=5)
    assert ingest(local_resources(tmp_path), first, HOUR).success
    lake = Lake(data_dir=str(tmp_path))
    files = [lake.read(features_key(first + timedelta(hours=h))) for h in range(6)]

    together = features.from_parquet_files(files)

    one_by_one = pd.concat([features.from_parquet(data) for data in files], ignore_index=True)
    pd.testing.assert_frame_equal(together, one_by_one)
    assert together["observed_at"].is_monotonic_increasing and len(together) == 6 * len(STATIONS.split(","))
    empty = features.from_parquet_files([])
    assert empty.empty and empty.dtypes.astype(str).to_dict() == together.dtypes.astype(str).to_dict()


@pytest.mark.slow
def test_range_in_one_run_leaves_the_same_lake_as_hourly_runs(tmp_path: Path) -> None:
    first, last = HOUR - timedelta(hours=47), HOUR
    backfill = ingest(local_resources(tmp_path / "backfill"), first, last)
    assert backfill.success
    assert metadata(backfill, "kma_observations")["api_calls"] < 48  # range endpoints, not a call per hour

    for offset in range(48):
        assert ingest(local_resources(tmp_path / "hourly"), first + timedelta(hours=offset)).success

    ranged, hourly = local_objects(tmp_path / "backfill"), local_objects(tmp_path / "hourly")
    assert len(ranged) == 48 * 3
    assert ranged == hourly


def test_same_hour_twice_gives_identical_objects(tmp_path: Path) -> None:
    assert ingest(local_resources(tmp_path), HOUR).success
    once = local_objects(tmp_path)
    assert ingest(local_resources(tmp_path), HOUR).success
    assert local_objects(tmp_path) == once


@pytest.mark.slow
def test_s3_lake_through_moto_server_matches_the_local_lake(tmp_path: Path, s3_bucket: str) -> None:
    s3 = {"kma": OfflineKMAClient(stations=STATIONS), "lake": Lake(url=f"s3://{s3_bucket}/weather")}
    first, last = HOUR - timedelta(hours=47), HOUR

    assert ingest(s3, HOUR).success
    assert sorted(s3_objects(s3_bucket, "weather")) == [
        "features/202611260900.parquet",
        "raw/asos/202611260900.txt",
        "raw/pm10/202611260900.txt",
    ]
    result = ingest(s3, first, last)
    assert result.success
    assert all(uri.startswith(f"s3://{s3_bucket}/weather/") for uri in _listed(metadata(result, "weather_features")))

    assert ingest(local_resources(tmp_path), first, last).success
    assert s3_objects(s3_bucket, "weather") == local_objects(tmp_path)


def _listed(meta: dict[str, object]) -> list[str]:
    return [line.split("`")[1] for line in str(meta["objects"]).splitlines() if "`" in line]


def test_malformed_line_is_skipped_logged_and_counted(tmp_path: Path) -> None:
    resources = local_resources(tmp_path, stations="108,112")
    assert ingest(resources, HOUR).success
    lake = Lake(data_dir=str(tmp_path))
    lines = lake.read(raw_key("asos", HOUR)).split(b"\n")
    broken = next(i for i, line in enumerate(lines) if line.startswith(b"202611260900 112"))
    lines[broken] = b"202611260900 112 250 2.0 -9"  # cut short: too few fields
    lake.write(raw_key("asos", HOUR), b"\n".join(lines))

    instance = dg.DagsterInstance.ephemeral()
    result = features_only(resources, instance)

    assert result.success
    assert metadata(result, "weather_features")["skipped_lines"] == 1
    assert metadata(result, "weather_features")["missing_station_hours"] == {partition_key(HOUR): [112]}
    logged = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any(f"line {broken + 1}:" in message and "skipped" in message for message in logged)
    frame = features.from_parquet(lake.read(features_key(HOUR)))
    assert frame["station_id"].tolist() == [108]


@pytest.mark.parametrize("kind", ["asos", "pm10"])
def test_unparsable_raw_hour_fails_naming_the_hour_and_object_and_writes_no_features(tmp_path: Path, kind: str) -> None:
    resources = local_resources(tmp_path, stations="108")
    assert ingest(resources, HOUR).success
    lake = Lake(data_dir=str(tmp_path))
    features_file = tmp_path / "lake" / features_key(HOUR)
    features_file.unlink()
    lake.write(raw_key(kind, HOUR), b"#START7777\n# header\nthis is not KMA data\n#7777END\n")

    error = failure(features_only(resources))

    assert f"{lake.uri(raw_key(kind, HOUR))} (2026-11-26-09:00) cannot be parsed" in error
    assert "materialize kma_observations and weather_features for 2026-11-26-09:00" in error
    assert not features_file.exists()


def test_raw_hour_the_folder_cannot_give_fails_naming_the_hour_and_object(tmp_path: Path) -> None:
    """A folder where the raw object should be: the OS's error, with the hour and the path."""
    resources = local_resources(tmp_path, stations="108")
    assert ingest(resources, HOUR).success
    path = tmp_path / "lake" / raw_key("pm10", HOUR)
    path.unlink()
    path.mkdir()

    error = failure(features_only(resources))

    assert f"raw KMA answer for 2026-11-26-09:00 cannot be read ({path} cannot be read: Is a directory)" in error


def test_an_unreadable_hour_before_counts_as_not_ingested_with_a_warning_naming_it(tmp_path: Path) -> None:
    """The hour before only lends its day total: the hour is built without it, as when it was never ingested."""
    resources = local_resources(tmp_path, stations="108")
    assert ingest(resources, HOUR - timedelta(hours=1), HOUR).success
    before = tmp_path / "lake" / raw_key("asos", HOUR - timedelta(hours=1))
    before.unlink()
    before.mkdir()
    instance = dg.DagsterInstance.ephemeral()

    result = features_only(resources, instance)

    assert result.success
    logged = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any(
        f"{before} cannot be read: Is a directory" in message and "2026-11-26-08:00" in message for message in logged
    )


def test_features_without_raw_hour_names_what_to_materialize(tmp_path: Path) -> None:
    result = features_only(local_resources(tmp_path))

    assert "materialize kma_observations first" in failure(result)


@pytest.mark.parametrize("stations", ["108,abc", "108,999", ""])
def test_bad_station_setting_fails_with_the_setting_named(tmp_path: Path, stations: str) -> None:
    result = ingest(local_resources(tmp_path, stations=stations), HOUR)

    assert "WEATHER_STATIONS" in failure(result)
    assert not (tmp_path / "lake").exists()


def test_feature_values_follow_the_raw_lines(tmp_path: Path) -> None:
    """Features are the parsed raw lines: PS is pressure, IR is kept, PM10 is the hour's mean."""
    assert ingest(local_resources(tmp_path, stations="108"), HOUR).success
    lake = Lake(data_dir=str(tmp_path))
    line = next(iter(wire.split_block(lake.read(raw_key("asos", HOUR))).lines)).split()
    written = dict(zip(fields.ASOS_FIELDS, (token.decode() for token in line), strict=True))
    readings = wire.parse_pm10(lake.read(raw_key("pm10", HOUR))).frame["pm10"]
    row = features.from_parquet(lake.read(features_key(HOUR))).iloc[0]

    assert row["pressure"] == float(written["PS"]) != float(written["PA"])
    temperature = float(written["TA"])
    assert row["temperature"] == pytest.approx(math.nan if temperature <= -99 else temperature, nan_ok=True)
    # The hour before is not ingested here: IR 3 says the hour was dry; a wet hour's amount is unknown without it
    assert row["precipitation"] == pytest.approx(0.0 if written["IR"] == "3" else math.nan, nan_ok=True)
    assert row["ir"] == float(written["IR"])
    assert row["pm10"] == pytest.approx(readings.mean())
    assert len(readings) == 12


KEY = "K3Y-never-to-be-seen"


def online_resources(root: Path, hub: FakeHub, stations: str = "108,112") -> dict[str, object]:
    kma = KMAHubClient(auth_key=KEY, base_url=hub.base_url, stations=stations, backoff_seconds=0.01)
    return {"kma": kma, "lake": Lake(data_dir=str(root))}


def test_api_hub_run_matches_offline_and_keeps_the_key_out_of_lake_logs_and_metadata(
    tmp_path: Path, hub: FakeHub
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    first, last = HOUR - timedelta(hours=23), HOUR
    result = dg.materialize(
        [kma_observations, weather_features],
        resources=online_resources(tmp_path / "online", hub),
        tags=range_tags(first, last),
        instance=instance,
    )

    assert result.success
    assert hub.requests and all(f"authKey={KEY}" in path for path in hub.requests)  # the key was really sent
    assert metadata(result, "kma_observations")["source"] == "kma"
    objects = local_objects(tmp_path / "online")
    assert not [key for key, data in objects.items() if KEY.encode() in data]
    logged = " ".join(str(entry.dagster_event or entry.user_message) for entry in instance.all_logs(result.run_id))
    assert KEY not in logged
    assert ingest(local_resources(tmp_path / "offline", stations="108,112"), first, last).success
    assert objects == local_objects(tmp_path / "offline")  # downstream cannot tell the API Hub from the generator


def test_failing_api_hub_fails_the_run_without_the_key(tmp_path: Path, hub: FakeHub) -> None:
    hub.default = status(500, f"upstream error for authKey={KEY}".encode())
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [kma_observations],
        resources=online_resources(tmp_path, hub),
        partition_key=partition_key(HOUR),
        instance=instance,
        raise_on_error=False,
    )

    assert "kma_sfctm2.php" in failure(result)
    logged = " ".join(str(entry.dagster_event or entry.user_message) for entry in instance.all_logs(result.run_id))
    assert KEY not in logged
    assert not (tmp_path / "lake").exists()


def test_unpublished_hour_past_its_publication_window_fails_at_once_and_stores_nothing(
    tmp_path: Path, hub: FakeHub
) -> None:
    """KMA answers a valid block without data lines for an hour it has not published: never an empty hour."""
    hub.script.append(status(200, b"#START7777\n# YYMMDDHHMI STN  WD   WS\n#7777END\n"))
    result = ingest(online_resources(tmp_path, hub), HOUR)  # HOUR is long past KMA's publication window

    assert "KMA has no observation for 1 of 1 hours" in failure(result)
    assert hub.endpoints().count("kma_sfctm2.php") == 1  # no waiting for an hour KMA will not publish now
    assert not (tmp_path / "lake").exists()


def test_a_station_kma_reports_twice_is_resolved_counted_and_fails_the_duplicate_check_as_a_warning(
    tmp_path: Path, hub: FakeHub
) -> None:
    """KMA repeats station 108 with its temperature missing: the complete line is kept, the count shows in the
    metadata, and the duplicate check (counting KMA's lines) fails as a warning without blocking anything."""

    def repeated(handler: HubHandler, endpoint: str, params: dict[str, str]) -> None:
        body = OfflineKMA().respond(endpoint, params)
        if endpoint == "kma_sfctm2.php":
            line = line_of(body, 108).split()
            line[11] = b"-99.0"  # TA missing in the repeat
            body = body.replace(b"#7777END", b" ".join(line) + b"\n#7777END")
        handler.send(200, body)

    hub.default = repeated
    result = dg.materialize(
        [kma_observations, weather_features],
        resources=online_resources(tmp_path, hub),
        partition_key=partition_key(HOUR),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )

    assert result.success
    assert metadata(result, "weather_features")["duplicate_station_lines"] == 1
    row = features.from_parquet(Lake(data_dir=str(tmp_path)).read(features_key(HOUR))).set_index("station_id")
    assert not math.isnan(row.loc[108, "temperature"])
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if "one_row" in e.asset_check_key.name]
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN


def line_of(body: bytes, station: int) -> bytes:
    (line,) = [line for line in wire.split_block(body).lines if wire.line_station(line) == station]
    return line


@pytest.mark.slow
def test_a_winter_days_precipitation_is_each_hours_rain_through_the_dagster_cli(tmp_path: Path) -> None:
    """`dagster asset materialize` over a rainy winter day at Seoul (01:00 to the next 00:00, one run): each hour's
    precipitation is the rain the generator made fall in that hour (`wet_and_rain`), also at hours between the
    3-hourly observations, where RN is not written (a three-hour RN spread over its hours would fail here), and the
    hours add up to the day's total that KMA writes in RN_DAY at 00:00."""
    days = [datetime(2026, 1, 1) + timedelta(days=d) for d in range(90)]

    def hours_of(day: datetime) -> list[datetime]:
        return [day + timedelta(hours=h) for h in range(1, 25)]

    day = next(d for d in days if any(wet_and_rain(108, h)[1] > 0 for h in hours_of(d) if h.hour % 3))
    hours = hours_of(day)
    env = unconfigured_environment()
    env |= {"WEATHER_DATA_DIR": str(tmp_path), "WEATHER_STATIONS": "108", "DAGSTER_HOME": str(tmp_path)}
    partitions = f"{partition_key(hours[0])}...{partition_key(hours[-1])}"
    done = dagster_materialize(env, "--select", "kma_observations,weather_features", "--partition-range", partitions)
    assert done.returncode == 0, done.stderr[-3000:]

    lake = Lake(data_dir=str(tmp_path))
    frame = features.from_parquet_files(lake.read(features_key(hour)) for hour in hours)
    midnight = wire.parse_asos(lake.read(raw_key("asos", hours[-1]))).frame.iloc[0]
    truth = [wet_and_rain(108, hour)[1] for hour in hours]
    assert [moment.to_pydatetime() for moment in frame["observed_at"]] == hours
    assert frame["precipitation"].tolist() == pytest.approx(truth, abs=1e-9)
    off_hours = [amount for hour, amount in zip(hours, frame["precipitation"], strict=True) if hour.hour % 3]
    assert any(amount > 0 for amount in off_hours)  # rain between the 3-hourly observations, hour by hour
    assert frame["precipitation"].sum() == pytest.approx(midnight["rn_day"], abs=0.001)
