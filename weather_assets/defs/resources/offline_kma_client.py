"""The KMA client without a key: the offline generator behind `KMAClient`'s interface."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Literal

import dagster as dg
from pydantic import Field

from weather_assets.defs.resources.kma_client import Ask, KMAClient
from weather_assets.domain.hours import KEY_FORMAT
from weather_assets.offline.hub import OfflineKMA
from weather_assets.offline.observations import Fault


class SensorFault(dg.Config):
    """A broken sensor in the offline observations (`weather_assets.offline.observations.Fault`), to test monitoring."""

    station_id: int
    field: str = Field(description="ASOS field: TA, HM, WS or PS.")
    kind: Literal["shift", "stuck"]
    value: float
    start: str = Field(description="First faulty hour, a partition key (KST).")

    def fault(self) -> Fault:
        return Fault(self.station_id, self.field, self.kind, self.value, datetime.strptime(self.start, KEY_FORMAT))


class OfflineKMAClient(KMAClient):
    """KMA's calls answered by the offline generator (`weather_assets.offline`): the same bytes as the API Hub,
    deterministically, without a network. Forecast issues are out as the clock says, as they would be at KMA."""

    faults: list[SensorFault] = Field(default=[], description="Broken sensors to inject (tests of monitoring).")

    @property
    def source(self) -> str:
        return "offline"

    @contextmanager
    def _connection(self) -> Iterator[Ask]:
        yield OfflineKMA(faults=[fault.fault() for fault in self.faults]).respond
