"""The offline API Hub: the endpoints the platform calls, answered by the offline observations and forecast."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from weather_assets.domain.hours import kst_now
from weather_assets.kma.forecast import ENDPOINT as FORECAST_ENDPOINT
from weather_assets.offline import forecast, observations


class OfflineKMA:
    """Answers ``kma_sfctm2.php``, ``kma_sfctm3.php``, ``kma_pm10.php`` and ``getVilageFcst`` calls as bytes,
    like the API Hub. `now` (naive KST; default the clock at each call) decides which forecast issues are out;
    `faults` break sensors in the observations (tests of monitoring)."""

    def __init__(self, now: datetime | None = None, faults: Sequence[observations.Fault] = ()) -> None:
        self.now = now
        self.faults = tuple(faults)

    def respond(self, endpoint: str, params: Mapping[str, str]) -> bytes:
        """The body the API Hub would send for this endpoint and these query parameters."""
        if endpoint == FORECAST_ENDPOINT:
            return forecast.respond(params, self.now or kst_now())
        if endpoint in observations.ENDPOINTS:
            return observations.respond(endpoint, params, self.faults)
        raise ValueError(f"the offline KMA generator does not serve {endpoint!r}")
