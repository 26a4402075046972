"""Keras 3: ``ChachamlCallback``, a Keras ``Callback`` writing to a chachaml run.

    from chachaml.integrations.keras import ChachamlCallback
    model.fit(x, y, epochs=5, validation_split=0.2, callbacks=[ChachamlCallback()])

``fit``'s settings and the optimizer's config become params, the epoch logs (``loss``,
``val_loss``, compiled metrics) become metrics at the epoch, and a standalone ``evaluate``'s
results become ``test_<name>`` metrics. Works with every Keras 3 backend (the tests use
``KERAS_BACKEND=torch``). Needs the extra ``keras`` (``pip install 'chachaml[keras]'``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import chachaml
from chachaml._optional import require
from chachaml.integrations._hook import HeldRun, HookRun, numbers

_Callback: Any = require("keras", "keras").callbacks.Callback

__all__ = ["ChachamlCallback"]


class ChachamlCallback(HeldRun, _Callback):  # type: ignore[misc]  # the base is untyped (Any)
    """A Keras ``Callback`` that logs params and per-epoch metrics to a chachaml run.

    With no arguments it logs to the current run; with no current run it starts one in
    ``on_train_begin`` and ends it ``completed`` in ``on_train_end`` (a standalone ``evaluate``
    gets the same treatment); it never becomes the current run. Keras tells callbacks nothing
    when ``fit`` raises, so a run the callback started is ended ``failed`` when that exception
    reaches the top level (a script's end, a prompt, a notebook cell, a thread's end), at a
    normal exit if it was caught, or at the block's end of ``with ChachamlCallback() as cb:``
    (docs/integrations.md, ADR-0027).

    Args:
        run: log to this run (a ``Run`` or an id) instead.
        name: the name of a run the callback starts.
        experiment: the experiment of a run the callback starts.
        tags: tags of a run the callback starts.
    """

    def __init__(
        self,
        run: Any = None,
        *,
        name: str | None = None,
        experiment: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        tags = {"framework": "keras", **(tags or {})}
        self._hook = HookRun(run, name=name, experiment=experiment, tags=tags, framework="keras")

    def on_train_begin(self, logs: Any = None) -> None:
        self._hook.restart()
        params: dict[str, Any] = {k: v for k, v in dict(self.params or {}).items() if v is not None}
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            params["optimizer"] = {k: v for k, v in optimizer.get_config().items() if v is not None}
        if params:
            self._hook.call(chachaml.log_params, params)

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        values = numbers(logs)
        if values:
            self._hook.call(chachaml.log_metrics, values, step=epoch)

    def on_train_end(self, logs: Any = None) -> None:
        self._hook.end("completed")

    def on_test_begin(self, logs: Any = None) -> None:
        self._hook.begin()

    def on_test_end(self, logs: Any = None) -> None:
        # Inside fit (two begins open: fit's and this evaluation's) the validation results
        # arrive again in the epoch logs as ``val_*``: log only a standalone evaluate's.
        standalone = self._hook.depth == 1
        values = numbers(logs)
        if standalone and values:
            self._hook.call(chachaml.log_metrics, {f"test_{k}": v for k, v in values.items()})
        self._hook.end("completed")
