"""KMA's real answers (`data/kma_real/`, copied with their source) through the parser, the features and the ingest
assets, hour by hour: what KMA wrote is what lands, and every hour gets the precipitation KMA's RN_DAY says."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from weather_assets.defs.assets.ingest import kma_observations, weather_features
from weather_assets.defs.partitions import hourly_partitions, range_tags
from weather_assets.defs.resources.kma_client import KMAHubClient
from weather_assets.defs.resources.lake import Lake, features_key
from weather_assets.domain import features
from weather_assets.domain.hours import partition_key
from weather_assets.kma import wire
from weather_assets.runs import metadata
from weather_assets_tests import kma_real
from weather_assets_tests.kma_hub import FakeHub, HubHandler

_EMPTY = b"#START7777\n#7777END\n"
# The excerpts are of 2024, before the default first partition: the same assets, with partitions from 2024 on.
_FROM_2024 = hourly_partitions("2024-01-01-00:00")
INGEST = [
    asset.map_asset_specs(lambda spec: spec.replace_attributes(partitions_def=_FROM_2024))
    for asset in (kma_observations, weather_features)
]


def raw_hours(path: Path) -> dict[datetime, tuple[bytes, bytes]]:
    """An excerpt as the lake keeps it: one raw ASOS object per hour (no PM10 reading in the excerpts)."""
    body = path.read_bytes()
    hours = kma_real.hours(path)
    regrouped = wire.regroup_by_hour([wire.split_block(body)], hours, [108])
    return {hour: (asos, _EMPTY) for hour, asos in regrouped.items()}


def spans(hours: list[datetime]) -> Iterator[tuple[datetime, datetime]]:
    """The runs of consecutive hours in a sorted list (the excerpts have gaps)."""
    start = hours[0]
    for before, after in zip(hours, hours[1:], strict=False):
        if after - before != timedelta(hours=1):
            yield start, before
            start = after
    yield start, hours[-1]


def agree_with_kma(path: Path, frame: pd.DataFrame) -> int:
    """Assert the features' precipitation is KMA's RN_DAY difference at every hour whose previous hour is in the
    excerpt (to 0.05 mm), and no hour is missing; returns how many hours were compared."""
    truth = kma_real.parsed(path).assign(kma=kma_real.kma_amounts).set_index("observed_at")["kma"]
    got = frame.set_index("observed_at")["precipitation"]
    assert got.notna().all(), got[got.isna()]
    known = truth.dropna()
    assert (got[known.index] - known).abs().max() <= 0.05, pd.DataFrame({"got": got, "kma": truth})
    return len(known)


@pytest.mark.parametrize("path", kma_real.EXCERPTS, ids=lambda p: p.name)
def test_every_real_line_parses_and_ta_hm_ws_ps_land_as_written(path: Path) -> None:
    parsed = wire.parse_asos(path.read_bytes())
    lines = [line.decode().split() for line in wire.split_block(path.read_bytes()).lines]
    assert parsed.skipped == [] and len(parsed.rows) == len(lines) > 20
    assert all(len(fields) == 46 for fields in lines)
    frame = parsed.frame
    written = pd.DataFrame(
        [(float(f[11]), float(f[13]), float(f[3]), float(f[8]), float(f[44])) for f in lines],
        columns=["temperature", "humidity", "wind_speed", "pressure", "ir"],
    )
    pd.testing.assert_frame_equal(frame[list(written.columns)], written)


@pytest.mark.parametrize("path", kma_real.EXCERPTS, ids=lambda p: p.name)
def test_every_hour_gets_kmas_precipitation_built_at_once(path: Path) -> None:
    built = features.build(raw_hours(path), [108])
    hours = kma_real.hours(path)
    previous_known = [hour for hour in hours if hour.hour == 1 or hour - timedelta(hours=1) in hours]
    assert agree_with_kma(path, built.frame) == len(previous_known) > 25
    assert built.precipitation_unknown == {} and built.precipitation_conflicts == {}
    assert built.frame["ir"].isin([1.0, 3.0, 4.0]).all()


def serve_excerpt(path: Path) -> object:
    """A hub action answering ASOS calls with the excerpt's lines of the asked hours, PM10 calls with no reading."""
    lines = wire.split_block(path.read_bytes())

    def act(handler: HubHandler, endpoint: str, params: dict[str, str]) -> None:
        if endpoint == "kma_pm10.php":
            return handler.send(200, _EMPTY)
        first = wire.parse_tm(params.get("tm") or params["tm1"])
        last = wire.parse_tm(params.get("tm") or params["tm2"])
        hours = [hour for hour in kma_real.hours(path) if first <= hour <= last]
        handler.send(200, b"".join(wire.regroup_by_hour([lines], hours, [108]).values()) or _EMPTY)

    return act


def resources(root: Path, hub: FakeHub) -> dict[str, object]:
    kma = KMAHubClient(auth_key="real-excerpt", base_url=hub.base_url, stations="108", backoff_seconds=0.01)
    return {"kma": kma, "lake": Lake(data_dir=str(root))}


def written(root: Path, hours: list[datetime]) -> pd.DataFrame:
    lake = Lake(data_dir=str(root))
    return features.from_parquet_files(lake.read(features_key(hour)) for hour in hours)


@pytest.mark.slow
@pytest.mark.parametrize("path", kma_real.EXCERPTS, ids=lambda p: p.name)
def test_a_range_backfill_and_one_hour_runs_give_kmas_precipitation(path: Path, tmp_path: Path, hub: FakeHub) -> None:
    """Each run of consecutive hours as one single-run backfill, then every hour as its own run in order (the
    hourly schedule, which reads the hour before from `raw/`): both write KMA's amount at every hour."""
    hub.default = serve_excerpt(path)
    hours = kma_real.hours(path)
    instance = dg.DagsterInstance.ephemeral()
    for first, last in spans(hours):
        result = dg.materialize(
            INGEST,
            resources=resources(tmp_path / "backfill", hub),
            tags=range_tags(first, last),
            instance=instance,
        )
        shown = metadata(result, "weather_features")
        frame = written(tmp_path / "backfill", [h for h in hours if first <= h <= last])
        assert shown["precipitation_mm_total"] == round(frame["precipitation"].sum(), 1)
        assert shown["wet_station_hours"] == (frame["precipitation"] > 0).sum()
    backfilled = written(tmp_path / "backfill", hours)
    agree_with_kma(path, backfilled)
    for hour in hours:
        dg.materialize(
            INGEST,
            resources=resources(tmp_path / "hourly", hub),
            partition_key=partition_key(hour),
            instance=instance,
        )
    hourly = written(tmp_path / "hourly", hours)
    agree_with_kma(path, hourly)
    pd.testing.assert_frame_equal(hourly, backfilled)
