"""KMA's forecast grid: positions to (nx, ny) exactly as KMA's own grid-point table gives them."""

from __future__ import annotations

import pytest

from weather_assets.domain.stations import all_stations
from weather_assets.kma.grid import to_grid

# Rows of KMA's grid-point spreadsheet (단기예보 조회서비스 활용가이드, 격자_위경도), as quoted in the public
# repository BadaHertz52/weather_react, src/modules/sfGrid.ts: (area, latitude, longitude, nx, ny).
# The rows include cells next to a boundary (Seoul 창신제1동 61 vs 창신제2동 60, 회현동 126 vs 소공동 127).
KMA_TABLE = [
    ("서울특별시", 37.56356944444444, 126.98000833333333, 60, 127),
    ("서울 종로구 창신제1동", 37.567936111111116, 127.01846388888889, 61, 127),
    ("서울 종로구 창신제2동", 37.571644444444445, 127.01296388888889, 60, 127),
    ("서울 중구 소공동", 37.55963055555555, 126.97910833333333, 60, 127),
    ("서울 중구 회현동", 37.55448333333333, 126.98144444444445, 60, 126),
    ("부산광역시", 35.17701944444444, 129.07695277777776, 98, 76),
    ("부산 중구 대청동", 35.101147222222224, 129.03333333333336, 97, 74),
    ("부산 강서구 가덕도동", 35.0526166666667, 128.814033333333, 93, 73),
    ("대구 동구", 35.88361666666667, 128.63771111111112, 90, 91),
    ("대구 동구 신암1동", 35.881277777777775, 128.61855277777778, 89, 91),
    ("대전 유성구", 36.359366666666666, 127.35834166666666, 67, 101),
    ("대전 대덕구 신탄진동", 36.448788888888885, 127.43120833333334, 68, 103),
    ("울산광역시", 35.53540833333333, 129.3136888888889, 102, 84),
    ("울산 중구 다운동", 35.5533, 129.2779888888889, 101, 84),
]


@pytest.mark.parametrize(("area", "latitude", "longitude", "nx", "ny"), KMA_TABLE, ids=[row[0] for row in KMA_TABLE])
def test_positions_map_to_kmas_published_grid_points(area: str, latitude: float, longitude: float, nx: int, ny: int):
    """The projection and its rounding reproduce KMA's table, boundary cells included."""
    assert to_grid(latitude, longitude) == (nx, ny)


# Stations against the table's point of the neighbourhood they stand in (same source as above).
STATIONS = [
    (108, (60, 127)),  # Seoul ASOS, 종로구 송월동 (교남동 row: 60, 127)
    (159, (97, 74)),  # Busan ASOS, 중구 대청동 (대청동 row: 97, 74)
    (143, (90, 91)),  # Daegu ASOS, 동구 효목동 (효목1동 row: 90, 91)
    (133, (67, 101)),  # Daejeon ASOS, 유성구 구성동 (유성구 row: 67, 101)
]


@pytest.mark.parametrize(("station_id", "point"), STATIONS)
def test_stations_fall_on_the_point_kma_gives_their_neighbourhood(station_id: int, point: tuple[int, int]) -> None:
    """A station's forecast is that of the grid point KMA serves for where it stands."""
    station = all_stations()[station_id]
    assert to_grid(station.latitude, station.longitude) == point


def test_the_grid_origin_is_point_43_136() -> None:
    """KMA's origin, 38 N 126 E, is grid point (43, 136) by definition."""
    assert to_grid(38.0, 126.0) == (43, 136)
