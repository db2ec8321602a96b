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


class Comfort(BaseModel):
    """One station-hour's comfort, as stored."""

    station_id: int
    station_name: str
    region: str | None
    prediction_datetime: datetime = Field(description="The KST hour (observation time) this comfort is for.")
    score: float
    label: str
    temperature: float | None
    humidity: float | None
    precipitation: float | None
    pm10: float | None
    wind_speed: float | None
    pressure: float | None
    model_name: str
    model_version: str
    age_seconds: float = Field(description="Seconds from the hour (KST) to now: how old the observation is.")


class History(BaseModel):
    station_id: int
    hours: int
    items: list[Comfort]


class ForecastHour(BaseModel):
    """One forecast hour of an issue."""

    forecast_datetime: datetime = Field(description="The KST hour forecast.")
    lead_hours: int = Field(description="Hours from the issue to this hour.")
    score: float
    label: str
    temperature: float | None
    humidity: float | None
    precipitation: float | None
    pm10: float | None
    wind_speed: float | None
    pressure: float | None
    forecast_inputs: list[str] = Field(description="Model inputs taken from KMA's forecast.")
    carried_inputs: list[str] = Field(description="Model inputs carried from the station's latest observation.")


class Forecast(BaseModel):
    """A station's newest forecast issue, from the current hour on."""

    station_id: int
    station_name: str
    region: str | None
    issued_at: datetime = Field(description="The KST issue (base) time of the forecast.")
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


class WindowPrediction(Prediction):
    """A commute window's forecast in the frontend's shape: its worst hour decides score, label and weather_data."""

    prediction_time: str = Field(description="The first KST hour of the window answered, YYYY-MM-DD HH:MM.")
    age_seconds: float = Field(description="Seconds from that hour (KST) to now: negative while it is ahead.")
    issued_at: datetime = Field(description="The KST issue time of the forecast answered (the newest).")
    hours: list[WindowHour] = Field(description="The window's forecast hours, earliest first.")


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
