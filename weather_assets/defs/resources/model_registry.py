"""The comfort model in MLflow's Model Registry: the champion alias, promotion, and loading for predictions.

MLflow (about 1 s to import) is imported by the functions that talk to the registry, not with the module: every
process that loads the code location imports this one, and only the runs that train or predict need MLflow.
"""

from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field
from threadpoolctl import ThreadpoolController

from weather_assets.defs.failures import materialize_first
from weather_assets.domain.monitoring import Reference
from weather_assets.domain.training import Scores, feature_matrix
from weather_assets.environment import DATA_DIR, tracking_uri

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from sklearn.base import RegressorMixin

MODEL_NAME = "comfort-model"
CHAMPION = "champion"
REFERENCE_KEY = "monitoring_reference"  # the MLmodel metadata entry holding a version's `Reference`
_PLAIN_USER = re.compile(r"[\w.-]+")


def display_uri(uri: str) -> str:
    """The URI with any password blanked, for messages and metadata, however malformed it is.

    Everything before the last ``@`` is credentials (a password's unencoded ``@``, ``:``, ``/``, ``?`` or ``#``
    would mislead a URL parser into showing part of it); only a plain user name before a ``:`` is kept. A URI
    without ``@`` whose port is no number may be ``user:password`` with the host forgotten: all of it is blanked.
    """
    scheme, separator, rest = uri.partition("://")
    if not separator:
        scheme, rest = "", uri
    if "@" in rest:
        credentials, _, place = rest.rpartition("@")
        user, colon, _ = credentials.partition(":")
        shown = f"{user}:***" if colon and _PLAIN_USER.fullmatch(user) else "***"
        return f"{scheme}{separator}{shown}@{place}"
    try:
        urlsplit(uri).port  # noqa: B018 - read for its check: a port that is no number raises
    except ValueError:  # or a [ without its ]
        return f"{scheme}{separator}***"
    return uri


def _client(uri: str) -> MlflowClient:
    """A client of this store for tracking and registry alike (never the process-wide registry URI)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _load(uri: str, version: str) -> tuple[RegressorMixin, list[str], Reference | None]:
    """A registered version's model, the inputs its signature names, in their order, and its monitoring reference
    (None for a version registered before models carried one).

    Through MLflow's scikit-learn flavor, not pyfunc: the same model and predictions, without pyfunc's scan of
    every installed package against the model's requirements, which each launched run that predicts would pay.
    """
    import mlflow.artifacts
    from mlflow.models import Model
    from mlflow.sklearn import load_model

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    local = mlflow.artifacts.download_artifacts(f"models:/{MODEL_NAME}/{version}")
    described = Model.load(local)
    stored = (described.metadata or {}).get(REFERENCE_KEY)
    reference = Reference.from_dict(stored) if stored else None
    return _one_job(load_model(local)), described.get_input_schema().input_names(), reference


def _one_job(model: RegressorMixin) -> RegressorMixin:
    """The model predicting on one job: a forest's threads add their trees' predictions in the order they finish,
    so the same hour could round to a different second decimal in a range run and in a one-hour run."""
    jobs = [name for name in model.get_params() if name == "n_jobs" or name.endswith("__n_jobs")]
    return model.set_params(**dict.fromkeys(jobs, 1))


def champion_version(client: MlflowClient) -> str | None:
    """The version the champion alias points at, or None before the first promotion."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(MODEL_NAME, CHAMPION).version)
    except MlflowException:
        return None


def register(
    model: RegressorMixin, validation_x: pd.DataFrame, example_x: pd.DataFrame, reference: Reference | None = None
) -> str:
    """Log `model` to the active MLflow run with its signature and an input example, register it, give its version.

    `reference` (the training window as monitoring judges days against it) goes into the model's MLmodel metadata,
    so whoever loads the model has it, without reading the training data again.
    """
    import sklearn
    from mlflow.models import infer_signature
    from mlflow.sklearn import log_model
    from skops.io import dumps as skops_dumps
    from skops.io import get_untrusted_types

    info = log_model(
        model,
        name="model",
        signature=infer_signature(validation_x, model.predict(validation_x)),
        input_example=example_x,
        registered_model_name=MODEL_NAME,
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        # skops (MLflow's safe format) asks which types to trust on load: the ones this freshly trained
        # model holds, written by this process, so trusting them is safe.
        skops_trusted_types=get_untrusted_types(data=skops_dumps(model)),
        metadata={REFERENCE_KEY: reference.to_dict()} if reference else None,
    )
    return str(info.registered_model_version)


@dataclass(frozen=True)
class Decision:
    """Whether a new version became champion, and the validation RMSEs it was decided on."""

    promoted: bool
    rmse: float
    previous_version: str | None
    previous_rmse: float | None
    reason: str


def _rmse(uri: str, version: str, validation: pd.DataFrame, truth: pd.Series) -> float:
    model, inputs, _ = _load(uri, version)
    return Scores.of(truth, model.predict(feature_matrix(validation, inputs))).rmse


def promote_if_better(uri: str, version: str, validation: pd.DataFrame, truth: pd.Series) -> Decision:
    """Move the champion alias to `version` only if it beats the current champion on the same validation rows.

    Both versions are loaded from the registry and scored the same way, on `validation` (feature rows)
    against `truth`, each with the inputs it was trained on: a model that lost a feature or learnt from bad
    labels cannot win by being measured differently. A tie keeps the champion.
    """
    from mlflow.exceptions import MlflowException

    client = _client(uri)
    rmse = _rmse(uri, version, validation, truth)
    current = champion_version(client)
    if current is None:
        client.set_registered_model_alias(MODEL_NAME, CHAMPION, version)
        return Decision(True, rmse, None, None, "first champion")
    try:
        previous = _rmse(uri, current, validation, truth)
    except (MlflowException, ValueError, KeyError) as error:
        client.set_registered_model_alias(MODEL_NAME, CHAMPION, version)
        return Decision(True, rmse, current, None, f"champion v{current} cannot score today's features ({error})")
    if rmse < previous:
        client.set_registered_model_alias(MODEL_NAME, CHAMPION, version)
        return Decision(True, rmse, current, previous, f"RMSE {rmse:.3f} beats champion v{current}'s {previous:.3f}")
    reason = f"RMSE {rmse:.3f} does not beat champion v{current}'s {previous:.3f}: v{current} stays champion"
    return Decision(False, rmse, current, previous, reason)


@dataclass(frozen=True)
class Champion:
    """The champion model as loaded for predictions, with the name each prediction row carries and the MLflow run
    that trained it (None for a model not loaded from the registry), which each row names as its lineage."""

    version: str
    model: RegressorMixin
    inputs: list[str]
    reference: Reference | None = None  # its training window, for monitoring (None: registered before this existed)
    run_id: str | None = None  # the MLflow run that trained it, for the rows' lineage

    @property
    def model_name(self) -> str:
        """Name and version, as stored with every prediction, e.g. ``comfort-model/3``."""
        return f"{MODEL_NAME}/{self.version}"

    @property
    def lineage(self) -> dict[str, str | None]:
        """The lineage columns this model gives each row it scores: its registry version and training run."""
        return {"model_version": self.version, "mlflow_run_id": self.run_id}

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Comfort scores for feature rows (unclipped model output), on one OpenMP thread.

        The rows of an hour to a month predict faster so, since gradient boosting's threads wait for each other
        at every tree (benchmarks/README.md), and runs that predict at once keep to a core each.
        """
        with _thread_pools().limit(limits=1):
            return np.asarray(self.model.predict(feature_matrix(frame, self.inputs)), dtype="float64")

    def comfort(self, frame: pd.DataFrame) -> np.ndarray:
        """Comfort scores for feature rows as stored: within 0 to 100, to two decimals."""
        return np.round(np.clip(self.predict(frame), 0, 100), 2)


@functools.cache
def _thread_pools() -> ThreadpoolController:
    """The process's thread pools, OpenMP's among them, found once (after a model has loaded scikit-learn's):
    limiting them through this costs 0.02 ms a call, `threadpool_limits` 2 ms, which looks them up every time."""
    return ThreadpoolController()


_loaded: dict[tuple[str, str], Champion] = {}
_lock = threading.Lock()


def load_champion(uri: str) -> Champion:
    """The current champion, loaded once per process and version.

    Each call asks the registry where the alias points (one small query), so a newly promoted champion is
    used from the next call on, without a restart; the model and the run that trained it are looked up only when
    its version is new.
    """
    client = _client(uri)
    version = champion_version(client)
    if version is None:
        raise LookupError(f"no {MODEL_NAME}@{CHAMPION} in {display_uri(uri)}")
    with _lock:
        if (uri, version) not in _loaded:
            run_id = client.get_model_version(MODEL_NAME, version).run_id
            _loaded[(uri, version)] = Champion(version, *_load(uri, version), run_id=run_id or None)
        return _loaded[(uri, version)]


class ModelRegistry(dg.ConfigurableResource):
    """Where the comfort model is tracked and registered; predictions get the champion from here.

    Embedded default: a SQLite store in ``$WEATHER_DATA_DIR/mlflow.db``; ``MLFLOW_TRACKING_URI`` points it at a
    tracking server instead.
    """

    tracking_uri: str | None = Field(default=None, description="MLflow tracking URI (MLFLOW_TRACKING_URI).")
    data_dir: str = Field(default=DATA_DIR, description="Root of local state (WEATHER_DATA_DIR).")

    def uri(self) -> str:
        """The tracking URI in effect."""
        return self.tracking_uri or tracking_uri(self.data_dir)

    def champion(self) -> Champion:
        """The current champion (see `load_champion`)."""
        return load_champion(self.uri())

    def champion_for_run(self) -> Champion:
        """The champion for an asset that scores rows; without one the run fails, not retried: train first."""
        try:
            return self.champion()
        except LookupError as error:
            raise materialize_first("comfort_model", error) from None
