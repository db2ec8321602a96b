"""The read API: "how comfortable is it now?" from the predictions table the pipeline keeps fresh.

    uvicorn weather_assets.api:app --host 127.0.0.1 --port 8000

Modules: `settings` (from the environment, at startup), `models` (response shapes), `store` (reads on the
event loop), `on_demand` with `locks` and `dagster_runs` (the bounded fallback for a missing recent hour),
`service` (the serving rules), `cache` and `answers` (the hot answers kept, serialized once, with their HTTP
caching headers), `routes` and `app` (the application).
"""

from weather_assets.api.app import create_app
from weather_assets.api.settings import Settings

__all__ = ["Settings", "app", "create_app"]

app = create_app()
