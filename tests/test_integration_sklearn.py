"""log_estimator with the real scikit-learn (issue 11 part 4)."""

from __future__ import annotations

import pytest

import chachaml
from _frameworks import need

pytestmark = pytest.mark.frameworks

need("sklearn")
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from chachaml.integrations.sklearn import log_estimator  # noqa: E402

X, Y = make_classification(n_samples=60, n_features=4, random_state=0)


def test_one_call_logs_params_score_and_the_fitted_model_in_a_run_of_its_own() -> None:
    chachaml.use_store("t.db")
    model = LogisticRegression(C=0.5, max_iter=200).fit(X, Y)
    run = log_estimator(model, X, Y)
    assert chachaml.current_run() is None
    assert (run.name, run.status) == ("LogisticRegression", "completed")
    assert run.params["C"] == 0.5 and run.params["max_iter"] == 200
    assert run.metrics["score"] == pytest.approx(model.score(X, Y))
    assert run.tags["sklearn.estimator"] == "sklearn.linear_model._logistic.LogisticRegression"
    loaded = chachaml.load_artifact(run.id, "model")
    assert (loaded.predict(X) == model.predict(X)).all()
    version = chachaml.register_model("clf", artifact="model", run_id=run.id)
    assert version.version == 1


def test_inside_a_run_it_logs_there_and_a_pipeline_gives_step_params() -> None:
    chachaml.use_store("t.db")
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=2.0)).fit(X, Y)
    with chachaml.with_run("mine") as mine:
        run = log_estimator(pipe, name="pipe.pkl")
        assert run.id == mine.id and run.status == "running"
    run = chachaml.get_run(mine.id)
    assert run.params["logisticregression__C"] == 2.0
    assert run.params["logisticregression"] == "LogisticRegression"
    assert "score" not in run.metrics, "no X: no score"
    assert [a.name for a in chachaml.list_artifacts(mine.id)] == ["pipe.pkl"]
    assert len(chachaml.runs()) == 1


def test_numpy_scalar_params_keep_their_number_type_and_other_objects_become_text() -> None:
    import numpy as np

    chachaml.use_store("t.db")
    model = LogisticRegression(C=np.float64(0.25), max_iter=np.int64(300), class_weight={0: 1, 1: 2}).fit(
        X, Y
    )
    run = log_estimator(model)
    assert run.params["C"] == 0.25 and run.params["max_iter"] == 300
    assert isinstance(run.params["max_iter"], int)
    assert run.params["class_weight"] == "{0: 1, 1: 2}"


def test_an_unfitted_estimator_or_a_non_estimator_is_refused_before_any_write() -> None:
    chachaml.use_store("t.db")
    with pytest.raises(chachaml.InvalidValueError, match=r"not fitted; call \.fit"):
        log_estimator(LogisticRegression(), X, Y)
    with pytest.raises(chachaml.InvalidValueError, match="needs a scikit-learn estimator"):
        log_estimator(object())
    assert len(chachaml.runs()) == 0


def test_a_failing_write_ends_its_own_run_failed() -> None:
    chachaml.use_store("t.db")
    model = LogisticRegression().fit(X, Y)
    with pytest.raises(chachaml.InvalidValueError):
        log_estimator(model, X, Y, name="../escape")
    (run,) = chachaml.runs()
    assert run.status == "failed" and run.error is not None
    assert run.error["type"] == "InvalidValueError"
