"""scikit-learn: ``log_estimator`` logs an estimator's params, score and fitted model in one call.

    from chachaml.integrations.sklearn import log_estimator
    model = LogisticRegression(C=0.5).fit(X_train, y_train)
    log_estimator(model, X_test, y_test)

Needs the extra ``sklearn`` (``pip install 'chachaml[sklearn]'``).
"""

from __future__ import annotations

from typing import Any

import chachaml
from chachaml._optional import require
from chachaml.errors import InvalidValueError
from chachaml.integrations._hook import HookRun

_validation = require("sklearn.utils.validation", "sklearn")
_NotFittedError: Any = require("sklearn.exceptions", "sklearn").NotFittedError

__all__ = ["log_estimator"]

_SCALARS = (str, int, float, bool, type(None))


def _param(value: Any) -> Any:
    """A JSON scalar as is (numpy scalars too); a nested estimator as its class name; anything
    else as ``str``."""
    if isinstance(value, _SCALARS):
        return value
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        return value.item()  # a numpy scalar (np.int64(5)) keeps its number type
    if hasattr(value, "get_params"):
        return type(value).__name__
    return str(value)


def log_estimator(
    estimator: Any, X: Any = None, y: Any = None, *, name: str = "model", run: Any = None
) -> chachaml.Run:
    """Log a fitted estimator: its params, its score on ``X, y`` and the model itself.

    Params are ``estimator.get_params(deep=True)`` (a pipeline's steps as ``step__param``);
    the metric ``score`` is ``estimator.score(X, y)`` (accuracy for a classifier, R² for a
    regressor) when ``X`` is given; the model is pickled as the artifact ``name`` (load it with
    ``chachaml.load_artifact(run_id, name)``, register it with ``register_model``). The tag
    ``sklearn.estimator`` names its class. With no current run (and no ``run=``), a run named
    after the class is started for this call and ended (``failed`` if logging raised).

    Args:
        estimator: a fitted scikit-learn estimator.
        X: data to score on (optional).
        y: targets for ``X`` (optional, for unsupervised estimators).
        name: the artifact name of the model.
        run: log to this run (a ``Run`` or an id) instead of the current one.

    Returns:
        the run logged to, read back after the writes.

    Raises:
        InvalidValueError: ``estimator`` is not a scikit-learn estimator, or is not fitted.
        MissingDependencyError: scikit-learn is not installed.
    """
    if not hasattr(estimator, "get_params") or not hasattr(estimator, "fit"):
        raise InvalidValueError(
            f"log_estimator needs a scikit-learn estimator, got {type(estimator).__name__}"
        )
    kind = type(estimator).__name__
    try:
        _validation.check_is_fitted(estimator)
    except _NotFittedError as exc:
        raise InvalidValueError(
            f"this {kind} is not fitted; call .fit(X, y) first: log_estimator stores the fitted model"
        ) from exc
    params = {str(k): _param(v) for k, v in estimator.get_params(deep=True).items()}
    score = None
    if X is not None and hasattr(estimator, "score"):
        score = float(estimator.score(X) if y is None else estimator.score(X, y))
    hook = HookRun(run, name=kind, tags={"framework": "sklearn"})
    run_id = hook.begin()
    try:
        hook.call(chachaml.log_params, params)
        hook.call(chachaml.set_tag, "sklearn.estimator", f"{type(estimator).__module__}.{kind}")
        if score is not None:
            hook.call(chachaml.log_metric, "score", score)
        hook.call(chachaml.log_artifact, name, estimator)
    except BaseException as exc:
        hook.end("killed" if isinstance(exc, KeyboardInterrupt) else "failed", exc)
        raise
    hook.end()
    return hook.in_context(chachaml.get_run, run_id)  # type: ignore[no-any-return]
