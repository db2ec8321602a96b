"""The text values of KMA's short-term forecast as numbers: PCP's classes, WSD, and the extension's class codes.

From KMA's VilageFcstInfoService_2.0 guide (Open API 활용가이드, 2024-11-28 edition, as public clients copy it):
PCP is a class of the hour's precipitation ("강수없음", "1mm 미만", "6.9mm", "30.0~50.0mm", "50.0mm 이상"), and
"-, null, 0값은 '강수없음'" (a JSON null reaches here as the text "null", `forecast.parse_forecast`); values
of +900 and more or -900 and less are missing. In the 3-hourly days added on 2024-11-28 (`forecast.
in_extension`) PCP, SNO and WSD are qualitative classes, given as codes: PCP 1 약한 비 (under 3 mm an hour),
2 보통 비 (3 to under 15), 3 강한 비 (15 and more); WSD 1 약한 바람 (under 4 m/s), 2 약간 강한 바람 (4 to under
9), 3 강한 바람 (9 and more); SNO 1 보통 눈, 2 많은 눈 (SNO is not used here). KMA's announcement of the change
names the classes in words, so the names are read too, wherever they come.
"""

from __future__ import annotations

import math
import re

_NONE = {"강수없음", "-", "null", "0", "0.0", ""}  # KMA's guide: "-, null, 0값은 '강수없음'"
_MISSING_AT = 900.0  # KMA's guide: values of +900 and more, -900 and less, are missing
_AMOUNT = r"(\d+(?:\.\d+)?)\s*mm"
_BELOW = re.compile(rf"{_AMOUNT}\s*미만")
_AT_LEAST = re.compile(rf"{_AMOUNT}\s*이상")
_RANGE = re.compile(r"(\d+(?:\.\d+)?)\s*~\s*" + _AMOUNT)
_EXACT = re.compile(_AMOUNT)
_CLASS_CODES = ("1", "2", "3")
# The extension's qualitative classes (the guide's "단기예보 연장에 따른 코드값 정보", from 2024-11-28 14:00): code,
# the class's name (as KMA's announcement words them), and the value it stands for, chosen as for PCP's classes:
# a bounded class its midpoint, an open one its lower bound.
_RAIN_CLASSES = {"1": 1.5, "2": 9.0, "3": 15.0}  # 약한 비 under 3 mm/h, 보통 비 3 to under 15, 강한 비 15 and more
_RAIN_NAMES = {"약한비": "1", "보통비": "2", "비": "2", "강한비": "3"}  # "(보통) 비": 비 alone is 보통 비
_WIND_CLASSES = {"1": 2.0, "2": 6.5, "3": 9.0}  # 약한 바람 under 4 m/s, 약간 강한 바람 4 to under 9, 강한 바람 9+
_WIND_NAMES = {"약한바람": "1", "약간강한바람": "2", "강한바람": "3"}


def parse_pcp(text: str, coded: bool = False) -> float:
    """Millimetres of a PCP class (the hour's precipitation), one rule per form of KMA's guide.

    - "강수없음" (also "-", "null", "0", empty, which the guide says mean the same): 0.0.
    - "X.Ymm" (1.0 to 29.9 mm, exact): X.Y.
    - "Xmm 미만" ("1mm 미만", also written "1.0mm 미만": 0.1 to under 1.0 mm): X / 2, the class's middle
      (0.5): any rain counts, and the comfort rule's rain penalty starts at any amount above 0.
    - "A~Bmm" ("30.0~50.0mm"): the midpoint (A + B) / 2, the least-biased single value of a bounded class.
    - "Xmm 이상" ("50.0mm 이상"): X, the lower bound, since an open class has no midpoint; the comfort rule's
      rain penalty is capped long before 50 mm, so the choice does not change a score.
    - The extension's classes, by name anywhere and by code ("1", "2", "3") where `coded` (`in_extension`):
      약한 비 (under 3 mm/h) 1.5, 보통 비 (3 to under 15) 9.0, 강한 비 (15 and more) 15.0.
    Raises ValueError for any other text, so a new form is noticed instead of read as dry.
    """
    value = text.strip()
    if value in _NONE:
        return 0.0
    if (named := _class(value, _RAIN_NAMES, coded)) is not None:
        return _RAIN_CLASSES[named]
    if match := _BELOW.fullmatch(value):
        return float(match[1]) / 2
    if match := _AT_LEAST.fullmatch(value):
        return float(match[1])
    if match := _RANGE.fullmatch(value):
        return (float(match[1]) + float(match[2])) / 2
    if match := _EXACT.fullmatch(value):
        return float(match[1])
    raise ValueError(
        f"unknown PCP form {text!r} (expected e.g. 강수없음, 1mm 미만, 6.9mm, 30.0~50.0mm, 50.0mm 이상, 약한 비)"
    )


def parse_wsd(text: str, coded: bool = False) -> float:
    """Wind speed (m/s) of a WSD value: a number, or an extension class, by name anywhere and by code ("1", "2",
    "3") where `coded` (`in_extension`): 약한 바람 (under 4 m/s) 2.0, 약간 강한 바람 (4 to under 9) 6.5, 강한 바람
    (9 and more) 9.0, where the comfort rule's wind penalty starts."""
    value = text.strip()
    named = _class(value, _WIND_NAMES, coded)
    return _WIND_CLASSES[named] if named is not None else parse_number(value)


def _class(value: str, names: dict[str, str], coded: bool) -> str | None:
    """The class code a value names (by its name, spaces ignored, or by its code where `coded`), else None."""
    if coded and value in _CLASS_CODES:
        return value
    return names.get(value.replace(" ", ""))


def parse_number(text: str) -> float:
    """A finite number, NaN for KMA's missing value (+-900 and beyond); ValueError for a non-finite one."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return math.nan if abs(value) >= _MISSING_AT else value
