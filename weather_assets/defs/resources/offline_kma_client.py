"""The KMA client without a key: the offline generator behind `KMAClient`'s interface."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from weather_assets.defs.resources.kma_client import Ask, KMAClient
from weather_assets.offline.hub import OfflineKMA


class OfflineKMAClient(KMAClient):
    """KMA's calls answered by the offline generator (`weather_assets.offline`): the same bytes as the API Hub,
    deterministically, without a network. Forecast issues are out as the clock says, as they would be at KMA."""

    @property
    def source(self) -> str:
        return "offline"

    @contextmanager
    def _connection(self) -> Iterator[Ask]:
        yield OfflineKMA().respond
