"""KMA's 5 km forecast grid: the (nx, ny) point of the short-term forecast (단기예보) that covers a position.

The grid is a Lambert conformal conic projection with KMA's constants, as KMA's sample converter
``dfs_xy_conv`` (published with the VilageFcstInfoService guide and copied by many public clients) states them:
earth radius 6371.00877 km, 5 km cells, standard parallels 30 and 60 N, origin 38 N 126 E at grid (43, 136).
"""

from __future__ import annotations

import math

_EARTH_RADIUS_KM = 6371.00877
_CELL_KM = 5.0
_PARALLEL_1, _PARALLEL_2 = math.radians(30.0), math.radians(60.0)
_ORIGIN_LAT, _ORIGIN_LON = math.radians(38.0), math.radians(126.0)
_ORIGIN_X, _ORIGIN_Y = 43, 136


def _tan_half(latitude: float) -> float:
    return math.tan(math.pi / 4 + latitude / 2)


_CONE = math.log(math.cos(_PARALLEL_1) / math.cos(_PARALLEL_2)) / math.log(
    _tan_half(_PARALLEL_2) / _tan_half(_PARALLEL_1)
)
_SCALE = (_EARTH_RADIUS_KM / _CELL_KM) * _tan_half(_PARALLEL_1) ** _CONE * math.cos(_PARALLEL_1) / _CONE
_ORIGIN_RHO = _SCALE / _tan_half(_ORIGIN_LAT) ** _CONE


def to_grid(latitude: float, longitude: float) -> tuple[int, int]:
    """The (nx, ny) grid point of a WGS84 position, rounded half up as ``dfs_xy_conv`` rounds."""
    rho = _SCALE / _tan_half(math.radians(latitude)) ** _CONE
    theta = math.radians(longitude) - _ORIGIN_LON
    theta = (theta + math.pi) % (2 * math.pi) - math.pi  # into [-pi, pi), as the converter wraps it
    theta *= _CONE
    x = rho * math.sin(theta) + _ORIGIN_X
    y = _ORIGIN_RHO - rho * math.cos(theta) + _ORIGIN_Y
    return math.floor(x + 0.5), math.floor(y + 0.5)
