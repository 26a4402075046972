"""Hugging Face transformers: ``ChachamlCallback``, a ``TrainerCallback`` writing to a chachaml run.

    from chachaml.integrations.transformers import ChachamlCallback
    trainer = Trainer(model=model, args=args, train_dataset=data, callbacks=[ChachamlCallback()])
    trainer.train()

The ``TrainingArguments`` and the model's config become params (``model.<key>``), everything the
Trainer logs (loss, learning rate, evaluation metrics, ...) becomes metrics at the global step.
Needs the extra ``transformers`` (``pip install 'chachaml[transformers]'``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import chachaml
from chachaml._optional import require
from chachaml.integrations._hook import HeldRun, HookRun, numbers

_TrainerCallback: Any = require("transformers", "transformers").TrainerCallback

__all__ = ["ChachamlCallback"]


class ChachamlCallback(HeldRun, _TrainerCallback):  # type: ignore[misc]  # the base is untyped (Any)
    """A ``TrainerCallback`` that logs params and metrics to a chachaml run.

    With no arguments it logs to the current run; with no current run it starts one in
    ``on_train_begin`` and ends it ``completed`` in ``on_train_end``; it never becomes the
    current run. The Trainer tells callbacks nothing when training raises, so that run is ended
    ``failed`` when the exception reaches the top level (a script's end, a prompt, a notebook
    cell, a thread's end), at a normal exit if it was caught, or at the block's end of
    ``with ChachamlCallback() as cb:`` (docs/integrations.md, ADR-0027).
    ``trainer.evaluate()`` after training reopens the run for its metrics.

    Args:
        run: log to this run (a ``Run`` or an id) instead.
        name: the name of a run the callback starts.
        experiment: the experiment of a run the callback starts.
        tags: tags of a run the callback starts.
        log_model_config: also log the model's config as params ``model.<key>``.
    """

    def __init__(
        self,
        run: Any = None,
        *,
        name: str | None = None,
        experiment: str | None = None,
        tags: Mapping[str, Any] | None = None,
        log_model_config: bool = True,
    ) -> None:
        self._hook = HookRun(
            run,
            name=name,
            experiment=experiment,
            tags={"framework": "transformers", **(tags or {})},
            framework="transformers",
        )
        self._log_model_config = log_model_config

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        self._hook.restart()
        params: dict[str, Any] = dict(args.to_dict())
        config = getattr(model, "config", None)
        if self._log_model_config and config is not None and hasattr(config, "to_dict"):
            params["model"] = config.to_dict()
        self._hook.call(chachaml.log_params, params)

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        values = numbers(logs)
        if values:
            self._hook.call(chachaml.log_metrics, values, step=state.global_step)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self._hook.end("completed")
