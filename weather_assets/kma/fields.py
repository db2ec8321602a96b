"""What each field of KMA's ASOS and PM10 answers means: the field order, the fields this product reads and the
columns they become, and each field's missing-value code, from KMA's help text for ``kma_sfctm2.php``.

`value` reads one token by these rules; `wire` reads whole answers with it. A token that is not a finite
number written as KMA writes numbers (``nan``, ``inf``, ``1e999``, ``1_0``, non-ASCII digits) is refused, so its
line is malformed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

# 1-based field order of an ASOS line, from KMA's help text.
ASOS_FIELDS: tuple[str, ...] = (
    "TM",
    "STN",
    "WD",
    "WS",
    "GST_WD",
    "GST_WS",
    "GST_TM",
    "PA",
    "PS",
    "PT",
    "PR",
    "TA",
    "TD",
    "HM",
    "PV",
    "RN",
    "RN_DAY",
    "RN_JUN",
    "RN_INT",
    "SD_HR3",
    "SD_DAY",
    "SD_TOT",
    "WC",
    "WP",
    "WW",
    "CA_TOT",
    "CA_MID",
    "CH_MIN",
    "CT",
    "CT_TOP",
    "CT_MID",
    "CT_LOW",
    "VS",
    "SS",
    "SI",
    "ST_GD",
    "TS",
    "TE_005",
    "TE_01",
    "TE_02",
    "TE_03",
    "ST_SEA",
    "WH",
    "BF",
    "IR",
    "IX",
)
# The fields this product reads, and the column each becomes. PS (sea level) is the pressure: unlike PA (station
# level) it is comparable across stations at different heights. RN_DAY and IR make the hour's precipitation
# (`features.precipitation`); RN, RN_DAY and IR are kept as KMA wrote them (a missing code is NaN), IR also in the
# feature table, where it says how KMA reported the hour.
ASOS_COLUMNS: dict[str, str] = {
    "TA": "temperature",
    "HM": "humidity",
    "WS": "wind_speed",
    "PS": "pressure",
    "RN": "rn",
    "RN_DAY": "rn_day",
    "IR": "ir",
}
ASOS_INDEX = {name: i for i, name in enumerate(ASOS_FIELDS)}
ASOS_ROW = ("station_id", "observed_at", *ASOS_COLUMNS.values())
PM10_ROW = ("station_id", "measured_at", "observed_at", "pm10")
MIN_ASOS_FIELDS = len(ASOS_FIELDS)  # a shorter line was cut off: its later fields cannot be trusted
# IR, KMA's help text: "강수자료 유무 (Code 1819) .. 1(Sec1에 포함), 2(Sec3에 포함), 3(무강수), 4(결측)". Code 1819
# (iR) says whether the hour's SYNOP report carries its precipitation group, and real answers (docs/kma-data.md)
# show what KMA writes: 3 on a dry hour, 1 on a wet hour at 09:00 and 21:00 KST (the SYNOP carries the group), 4 on
# every other wet hour ("결측": the group is omitted, not the measurement: RN and RN_DAY are valid on those lines).
IR_DRY = 3.0
IR_WET = frozenset({1.0, 2.0, 4.0})
IR_CODES = frozenset({*IR_WET, IR_DRY})


@dataclass(frozen=True)
class MissingCode:
    """How one field writes 'no reading' (`-` is missing in every field): `rule` says it, `missing` decides it.

    The table of missing codes in docs/kma-data.md is these rows, word for word (a test holds them together).
    """

    feature: str
    rule: str
    missing: Callable[[float], bool]


_MINUS_99 = "-99 family (`-99`, `-99.0`, `-999`): at or below -99"
_MINUS_9 = "-9 family (`-9`, `-9.0`, `-9.00`): any negative value"


def _at_or_below_minus_99(reading: float) -> bool:
    return reading <= -99.0


def _negative(reading: float) -> bool:
    return reading < 0


def _not_an_ir_code(reading: float) -> bool:
    return reading not in IR_CODES


def _signed(feature: str) -> MissingCode:
    return MissingCode(feature, _MINUS_99, _at_or_below_minus_99)


def _unsigned(feature: str, rule: str = _MINUS_9) -> MissingCode:
    return MissingCode(feature, rule, _negative)


# Missing-value codes per field, from KMA's help text for kma_sfctm2.php and the answers it serves: a field that can
# be negative is missing only at the -99 family (real answers carry TE -99.0; -9.0 deg C is a real winter
# temperature); a field that cannot be negative at the -9 family. The 46-field help text on the precipitation fields:
# RN "강수량 (mm) : 여름철에는 1시간강수량, 겨울철에는 3시간강수량", RN_DAY "일강수량 (mm) : 해당시간까지 관측된
# 양(통계표)"; real answers write both as -9.0 where nothing fell.
MISSING_CODES: dict[str, MissingCode] = {
    "TA": _signed("temperature (deg C)"),
    "HM": _unsigned("humidity (%)"),
    "WS": _unsigned("wind_speed (m/s)"),
    "PS": _unsigned("pressure (hPa, sea level)"),
    "RN": _unsigned(
        "rn, not read into features (mm)", f"{_MINUS_9}: a dry hour, or winter's hours between its 3-hourly ones"
    ),
    "RN_DAY": _unsigned(
        "rn_day, read into precipitation (mm)", f"{_MINUS_9}: nothing fell yet today (a wet `IR` line: no total)"
    ),
    "IR": MissingCode(
        "ir (code 1819), read into precipitation",
        "any code but 1 to 4 (an unknown code says nothing): 3 a dry hour; 1, 2 and 4 a wet one",
        _not_an_ir_code,
    ),
    "PM10": _unsigned("pm10 (ug/m3)", "any negative value (KMA writes -99)"),
    "TD": _signed("not read (dew point, deg C)"),
    "PR": _signed("not read (pressure change, hPa)"),
    "TS": _signed("not read (ground surface temperature, deg C)"),
    **{name: _signed("not read (soil temperature, deg C)") for name in ("TE_005", "TE_01", "TE_02", "TE_03")},
}
# A number as KMA writes one: ASCII digits, an optional sign and decimal point. float() also takes `1_0`, `nan`,
# `1e999` and non-ASCII digits; none of them is KMA's.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def value(token: str, field: str) -> float:
    """A field's reading, NaN for its missing code (`MISSING_CODES`); ValueError for a token that is not a finite
    number as KMA writes numbers (`_NUMBER`)."""
    if token == "-":
        return math.nan
    reading = float(token) if _NUMBER.fullmatch(token) else math.nan
    if not math.isfinite(reading):
        raise ValueError(f"{field} {token!r} is not a finite number as KMA writes one")
    return math.nan if MISSING_CODES[field].missing(reading) else reading
