"""PyTorch Lightning: ``ChachamlLogger``, a Lightning ``Logger`` writing to a chachaml run.

    from chachaml.integrations.lightning import ChachamlLogger
    trainer = lightning.Trainer(logger=ChachamlLogger(), max_epochs=3)
    trainer.fit(model, data)

Hyperparameters become params, ``self.log(...)`` values become metrics at Lightning's step, and
each checkpoint ``ModelCheckpoint`` saves is copied into the run as ``checkpoints/<file>``.
Needs the extra ``lightning`` (``pip install 'chachaml[lightning]'``).
"""

from __future__ import annotations

import os
import sys
from argparse import Namespace
from collections.abc import Mapping
from typing import Any

import chachaml
from chachaml._optional import require
from chachaml.integrations._hook import HookRun, numbers

_Logger: Any = require("lightning.pytorch.loggers", "lightning").Logger
_rank_zero_only = require("lightning.pytorch.utilities.rank_zero", "lightning").rank_zero_only

__all__ = ["ChachamlLogger"]


class ChachamlLogger(_Logger):  # type: ignore[misc]  # the base is untyped (Any)
    """A Lightning ``Logger`` that logs params, metrics and checkpoints to a chachaml run.

    With no arguments it logs to the current run; with no current run it starts one when
    training starts (on Lightning's first use of the logger) and ends it in ``finalize``:
    ``completed`` on success, ``failed`` (``killed`` on Ctrl-C) with the exception otherwise.
    A later ``trainer.test`` with the same logger reopens that run.

    Args:
        run: log to this run (a ``Run`` or an id) instead.
        name: the name of a run the logger starts.
        experiment: the experiment of a run the logger starts.
        tags: tags of a run the logger starts.
        log_checkpoints: copy saved checkpoints into the run (``checkpoints/<file name>``).
    """

    def __init__(
        self,
        run: Any = None,
        *,
        name: str | None = None,
        experiment: str | None = None,
        tags: Mapping[str, Any] | None = None,
        log_checkpoints: bool = True,
    ) -> None:
        super().__init__()
        self._hook = HookRun(
            run, name=name, experiment=experiment, tags={"framework": "lightning", **(tags or {})}
        )
        self._log_checkpoints = log_checkpoints
        self._logged: dict[str, tuple[int, int]] = {}  # checkpoint path -> (mtime_ns, size) copied
        self._experiment: str | None = None

    def _ensure(self) -> str:
        if not self._hook.active:
            self._hook.begin()
            if self._experiment is None:
                self._experiment = self._hook.call(lambda run: chachaml.get_run(run).experiment)
        assert self._hook.run_id is not None
        return self._hook.run_id

    @property
    def name(self) -> str:
        """The experiment of the run (Lightning puts it in checkpoint folder names)."""
        if self._experiment is None:
            self._ensure()
        return str(self._experiment)

    @property
    def version(self) -> str:
        """The run id."""
        return self._hook.run_id or self._ensure()

    @property
    def run_id(self) -> str | None:
        """The id of the run this logger writes to (None before its first use)."""
        return self._hook.run_id

    @_rank_zero_only  # type: ignore[untyped-decorator]
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Log hyperparameters as params (nested dicts flattened with dots)."""
        self._ensure()
        if isinstance(params, Namespace):
            params = vars(params)
        clean = {str(k): v for k, v in dict(params or {}).items()}
        if clean:
            self._hook.call(chachaml.log_params, clean)

    @_rank_zero_only  # type: ignore[untyped-decorator]
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log the numeric values of ``metrics`` at Lightning's ``step``."""
        self._ensure()
        values = numbers(metrics)
        if values:
            self._hook.call(chachaml.log_metrics, values, step=step)

    @_rank_zero_only  # type: ignore[untyped-decorator]
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Copy the checkpoints ``checkpoint_callback`` keeps (new or changed files) into the run."""
        if not self._log_checkpoints:
            return
        self._ensure()
        paths = [*getattr(checkpoint_callback, "best_k_models", {}), checkpoint_callback.last_model_path]
        for path in dict.fromkeys(str(p) for p in paths if p):
            try:
                st = os.stat(path)
            except FileNotFoundError:  # a top-k file already replaced by a better one
                continue
            if self._logged.get(path) == (st.st_mtime_ns, st.st_size):
                continue
            name = f"checkpoints/{os.path.basename(path)}"
            # last.ckpt is rewritten every epoch: the run keeps the newest.
            self._hook.call(chachaml.log_file, path, name, overwrite=True)
            self._logged[path] = (st.st_mtime_ns, st.st_size)
        best = getattr(checkpoint_callback, "best_model_path", "")
        if best:
            tag = f"checkpoints/{os.path.basename(best)}"
            self._hook.call(chachaml.set_tag, "lightning.best_checkpoint", tag)

    @_rank_zero_only  # type: ignore[untyped-decorator]
    def finalize(self, status: str) -> None:
        """End a run this logger started: ``success`` -> completed, else failed (or killed)."""
        if status == "success":
            self._hook.end("completed")
            return
        exc = sys.exc_info()[1]  # Lightning calls this while handling the exception
        self._hook.end("killed" if isinstance(exc, KeyboardInterrupt) else "failed", exc)
