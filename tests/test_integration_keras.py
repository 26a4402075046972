"""ChachamlCallback with the real Keras 3 on the torch backend, tiny data, CPU (issue 11 part 4)."""

from __future__ import annotations

import os
from typing import Any

import pytest

import chachaml
from _frameworks import need

pytestmark = [
    pytest.mark.frameworks,
    # Keras 3.15's torch variables under numpy 2 (in optimizer.get_config); not ours.
    pytest.mark.filterwarnings(
        "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
    ),
]

# Keras reads its backend once, at import; torch is the backend installed for CI.
os.environ.setdefault("KERAS_BACKEND", "torch")
np = need("numpy")
keras = need("keras")
from chachaml.integrations.keras import ChachamlCallback  # noqa: E402

X = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
Y = X.sum(axis=1, keepdims=True)


def model() -> Any:
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="mse", metrics=["mae"])
    return m


class Explode(keras.callbacks.Callback):  # type: ignore[misc,name-defined]
    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if epoch == 1:
            raise RuntimeError("nan loss")


def test_uses_the_torch_backend() -> None:
    assert keras.backend.backend() == "torch"


def test_with_no_current_run_fit_and_evaluate_land_in_one_completed_run() -> None:
    chachaml.use_store("t.db")
    callback = ChachamlCallback(name="dense", experiment="keras")
    m = model()
    m.fit(X, Y, epochs=3, batch_size=8, validation_split=0.25, verbose=0, callbacks=[callback])
    assert chachaml.current_run() is None
    run = chachaml.get_run(callback.run_id)
    assert (run.name, run.experiment, run.status) == ("dense", "keras", "completed")
    assert run.params["epochs"] == 3
    assert run.params["optimizer.learning_rate"] == pytest.approx(0.05)
    assert run.params["optimizer.name"] == "sgd"
    for key in ("loss", "mae", "val_loss", "val_mae"):
        assert [p.step for p in chachaml.metric_history(run.id, key)] == [0, 1, 2], key
    assert not any(k.startswith("test_") for k in run.metrics), "validation is not a standalone evaluate"

    m.evaluate(X, Y, verbose=0, callbacks=[callback])
    run = chachaml.get_run(callback.run_id)
    assert run.status == "completed"
    assert run.metrics["test_loss"] == pytest.approx(float(m.evaluate(X, Y, verbose=0)[0]))
    assert len(chachaml.runs()) == 1


def test_inside_a_run_the_callback_logs_there() -> None:
    chachaml.use_store("t.db")
    with chachaml.with_run("mine") as mine:
        callback = ChachamlCallback()
        model().fit(X, Y, epochs=2, verbose=0, callbacks=[callback])
        assert callback.run_id == mine.id
        assert chachaml.current_run().status == "running"  # type: ignore[union-attr]
    assert len(chachaml.metric_history(mine.id, "loss")) == 2
    assert len(chachaml.runs()) == 1


def test_a_fit_that_raises_leaves_no_current_run_and_the_next_fit_fails_it_and_starts_afresh() -> None:
    chachaml.use_store("t.db")
    callback = ChachamlCallback()
    with pytest.raises(RuntimeError, match="nan loss"):
        model().fit(X, Y, epochs=3, verbose=0, callbacks=[callback, Explode()])
    first = callback.run_id
    assert first is not None and chachaml.current_run() is None
    assert len(chachaml.metric_history(first, "loss")) == 2
    model().fit(X, Y, epochs=1, verbose=0, callbacks=[callback])
    assert chachaml.get_run(first).status == "failed"
    assert callback.run_id != first
    assert chachaml.get_run(callback.run_id).status == "completed"
