"""ASOS station metadata shipped with the package (name, region, position), and the station selection."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

DEFAULT_STATIONS = "100,101,102,104,105,108,112,119,129,133"


@dataclass(frozen=True)
class Station:
    """One ASOS station: ids are KMA's, names are romanised, region is the province or metropolitan city."""

    station_id: int
    station_name: str
    station_name_ko: str
    region: str
    latitude: float
    longitude: float
    elevation_m: float
    has_pm10: bool

    @classmethod
    def unknown(cls, station_id: int) -> Station:
        """A placeholder with mid-peninsula climate, so the offline generator can answer for any id."""
        return cls(station_id, f"station {station_id}", "", "unknown", 36.5, 127.5, 50.0, False)


@cache
def all_stations() -> dict[int, Station]:
    """The shipped station table, keyed by station id."""
    text = files("weather_assets.domain").joinpath("data/stations.csv").read_text(encoding="utf-8")
    return {
        int(row["station_id"]): Station(
            station_id=int(row["station_id"]),
            station_name=row["station_name"],
            station_name_ko=row["station_name_ko"],
            region=row["region"],
            latitude=float(row["latitude"]),
            longitude=float(row["longitude"]),
            elevation_m=float(row["elevation_m"]),
            has_pm10=row["has_pm10"] == "1",
        )
        for row in csv.DictReader(text.splitlines())
    }


def station_names() -> dict[int, str]:
    """Station ids to their English names, for tables people read."""
    return {station_id: station.station_name for station_id, station in all_stations().items()}


def parse_station_ids(text: str) -> list[int]:
    """Station ids from a comma-separated list such as ``WEATHER_STATIONS``, checked against the table."""
    ids: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if not part.isdigit():
            raise ValueError(f"WEATHER_STATIONS holds {part!r}, which is not a station id (expected e.g. 108)")
        ids.append(int(part))
    unknown = sorted(set(ids) - set(all_stations()))
    if unknown:
        raise ValueError(
            f"WEATHER_STATIONS names stations {unknown} that are not in weather_assets/domain/data/stations.csv; "
            "add them there (id, name, region, position) or remove them"
        )
    if not ids:
        raise ValueError("WEATHER_STATIONS is empty: name at least one ASOS station id, e.g. 108")
    return sorted(set(ids))
