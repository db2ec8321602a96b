"""The read API's response shapes: its own (comfort, history, forecast, health) and the app's existing frontend's."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

EVALUATIONS = {
    "excellent": "Excellent: a perfect time to be outside.",
    "good": "Good: pleasant weather to go out.",
    "fair": "Fair: bearable, dress for the weather.",
    "poor": "Poor: uncomfortable, stay in if you can.",
}
TITLES = {"now": "Comfort now", "morning": "Morning commute", "evening": "Evening commute"}


class Measurements(BaseModel):
    """The six measurements a comfort score is computed from (`weather_assets.domain.features.MEASUREMENTS`)."""

    temperature: float | None
    humidity: float | None
    precipitation: float | None
    pm10: float | None
    wind_speed: float | None
    pressure: float | None


class Lineage(BaseModel):
    """What computed an answer: the row's lineage as stored (each null on a row written before the lineage columns
    existed). The app's frontend ignores this field."""

    model_version: str | None = Field(description="The comfort model's registry version.")
    mlflow_run_id: str | None = Field(description="The MLflow run that trained that version.")
    dagster_run_id: str | None = Field(description="The Dagster run that computed and wrote the row.")
    input_object: str | None = Field(description="The lake key of the object the row was computed from.")
    input_sha256: str | None = Field(description="The SHA-256 of that object's bytes as read.")


class Comfort(Measurements):
    """One station-hour's comfort, as stored."""

    station_id: int
    station_name: str
    region: str | None
    prediction_datetime: datetime = Field(description="The KST hour (observation time) this comfort is for.")
    score: float
    label: str
    model_name: str
    model_version: str
    age_seconds: float = Field(description="Seconds from the hour (KST) to now: how old the observation is.")
    lineage: Lineage


class History(BaseModel):
    station_id: int
    hours: int
    items: list[Comfort]


class ForecastHour(Measurements):
    """One forecast hour, from the newest issue that forecasts it."""

    forecast_datetime: datetime = Field(description="The KST hour forecast.")
    issued_at: datetime = Field(description="The KST issue time this hour's forecast comes from.")
    lead_hours: int = Field(description="Hours from the issue to this hour.")
    score: float
    label: str
    forecast_inputs: list[str] = Field(description="Model inputs taken from KMA's forecast.")
    carried_inputs: list[str] = Field(description="Model inputs carried from the station's latest observation.")
    lineage: Lineage


class Forecast(BaseModel):
    """A station's forecast from the current hour on, each hour from the newest issue that forecasts it."""

    station_id: int
    station_name: str
    region: str | None
    issued_at: datetime = Field(description="The newest KST issue (base) time among the hours'.")
    model_name: str
    model_version: str
    hours: list[ForecastHour]


class WeatherData(BaseModel):
    temperature: float | None
    humidity: float | None
    rainfall: float | None
    pm10: float | None
    wind_speed: float | None
    pressure: float | None
    region: str | None
    station_id: int


class Prediction(BaseModel):
    """The response shape of the app's existing frontend, plus the age of the hour it names."""

    title: str
    score: float
    label: str
    evaluation: str
    prediction_time: str = Field(description="The KST hour answered, YYYY-MM-DD HH:MM.")
    weather_data: WeatherData
    prediction_type: str
    status: str
    age_seconds: float = Field(description="Seconds from that hour (KST) to now.")
    lineage: Lineage = Field(description="What computed the answer (for a commute window: its worst hour).")


class WindowHour(BaseModel):
    """One forecast hour of a commute window."""

    time: str = Field(description="The KST hour, HH:00.")
    score: float
    label: str
    temperature: float | None
    humidity: float | None
    rainfall: float | None
    pm10: float | None = Field(description="Carried from the latest observation (KMA's forecast has none).")
    wind_speed: float | None
    pressure: float | None = Field(description="Carried from the latest observation (KMA's forecast has none).")
    lead_hours: int = Field(description="Hours from the issue to this hour.")
    issued_at: datetime = Field(description="The KST issue time this hour's forecast comes from.")


class WindowPrediction(Prediction):
    """A commute window's forecast in the frontend's shape: its worst hour decides score, label and weather_data."""

    prediction_time: str = Field(description="The window's start (06:00 or 17:00 KST), YYYY-MM-DD HH:MM.")
    age_seconds: float = Field(
        description="Seconds from the window's start (KST) to now: negative while it is ahead, positive during it."
    )
    issued_at: datetime = Field(description="The newest KST issue time among the hours' (each hour's newest).")
    hours: list[WindowHour] = Field(
        description="The window's hours still to come (all of them before it starts), earliest first."
    )


class HourlyPoint(BaseModel):
    time: str = Field(description="The KST hour, HH:00.")
    temperature: float | None
    pm10: float | None
    humidity: float | None
    rainfall: float | None


class Hourly(BaseModel):
    """The frontend's chart: the last stored hours at its station, oldest first."""

    hourly: list[HourlyPoint]
    count: int
    status: str


class Welcome(BaseModel):
    message: str
    current_time: str = Field(description="KST, YYYY-MM-DD HH:MM.")
    hour: int


class Health(BaseModel):
    status: str = Field(description="ok, or stale when the newest hour is older than the staleness bound.")
    database: str
    newest_prediction: datetime | None = Field(default=None, description="The newest stored KST hour.")
    newest_prediction_age_seconds: float | None = Field(default=None, description="Seconds from that hour to now.")
    max_staleness_seconds: float
    fresh: bool = Field(description="Whether the newest hour is within the staleness bound.")
    database_reopened_at: datetime | None = Field(
        default=None, description="When the API last found its SQLite file replaced and read the new one (KST)."
    )
