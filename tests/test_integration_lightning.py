"""ChachamlLogger with the real PyTorch Lightning on tiny data, on the CPU (issue 11 part 4)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

import chachaml
from _frameworks import need

pytestmark = [
    pytest.mark.frameworks,
    # Lightning 2.6 calls a torch 2.13 API that torch deprecates; not ours.
    pytest.mark.filterwarnings(r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"),
]

torch = need("torch")
L = need("lightning")
from chachaml.integrations.lightning import ChachamlLogger  # noqa: E402


class Tiny(L.LightningModule):  # type: ignore[misc,name-defined]
    def __init__(self, lr: float = 0.1, fail_at_step: int | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(2, 1)

    def _loss(self, batch: Any) -> Any:
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        if self.hparams.fail_at_step is not None and self.global_step >= self.hparams.fail_at_step:
            raise RuntimeError("loss diverged")
        loss = self._loss(batch)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val_loss", self._loss(batch))

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.log("test_loss", self._loss(batch))

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loader() -> Any:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 2, generator=gen)
    data = torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True))
    return torch.utils.data.DataLoader(data, batch_size=4)


def trainer(tmp_path: Path, logger: Any, epochs: int = 2) -> Any:
    return L.Trainer(
        max_epochs=epochs,
        logger=logger,
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        default_root_dir=tmp_path,
        callbacks=[L.pytorch.callbacks.ModelCheckpoint(monitor="val_loss", save_last=True)],
    )


def test_with_no_current_run_the_logger_starts_one_logs_everything_and_completes_it(tmp_path: Path) -> None:
    chachaml.use_store("t.db")
    logger = ChachamlLogger(name="tiny", experiment="lightning")
    trainer(tmp_path, logger).fit(Tiny(lr=0.1), loader(), loader())
    assert chachaml.current_run() is None, "the logger's run is never the user's current run"
    run = chachaml.get_run(logger.run_id)
    assert (run.name, run.experiment, run.status) == ("tiny", "lightning", "completed")
    assert run.params["lr"] == 0.1 and run.tags["framework"] == "lightning"
    history = chachaml.metric_history(run.id, "train_loss")
    assert [p.step for p in history] == list(range(8)), "one point per training step, at its step"
    assert len(chachaml.metric_history(run.id, "val_loss")) == 2
    names = {a.name for a in chachaml.list_artifacts(run.id)}
    assert "checkpoints/last.ckpt" in names and len(names) >= 2
    best = run.tags["lightning.best_checkpoint"]
    assert best in names
    state = torch.load(io.BytesIO(chachaml.load_artifact(run.id, best)), weights_only=False)
    assert set(state["state_dict"]) == {"layer.weight", "layer.bias"}


def test_inside_a_run_the_logger_writes_there_and_leaves_ending_it_to_the_block(tmp_path: Path) -> None:
    chachaml.use_store("t.db")
    with chachaml.with_run("mine") as mine:
        logger = ChachamlLogger()
        trainer(tmp_path, logger, epochs=1).fit(Tiny(), loader(), loader())
        assert logger.run_id == mine.id
        assert chachaml.current_run().status == "running"  # type: ignore[union-attr]
    run = chachaml.get_run(mine.id)
    assert run.status == "completed" and "train_loss" in run.metrics and run.params["lr"] == 0.1
    assert len(chachaml.runs()) == 1


def test_a_training_that_raises_ends_the_run_failed_with_the_exception(tmp_path: Path) -> None:
    chachaml.use_store("t.db")
    logger = ChachamlLogger()
    with pytest.raises(RuntimeError, match="loss diverged"):
        trainer(tmp_path, logger).fit(Tiny(fail_at_step=2), loader(), loader())
    run = chachaml.get_run(logger.run_id)
    assert run.status == "failed"
    assert run.error is not None and run.error["type"] == "RuntimeError"
    assert "loss diverged" in run.error["message"]
    assert len(chachaml.metric_history(run.id, "train_loss")) == 2


def test_fit_then_test_with_one_logger_land_in_one_run(tmp_path: Path) -> None:
    chachaml.use_store("t.db")
    logger = ChachamlLogger()
    t = trainer(tmp_path, logger, epochs=1)
    model = Tiny()
    t.fit(model, loader(), loader())
    t.test(model, loader())
    run = chachaml.get_run(logger.run_id)
    assert run.status == "completed"
    assert {"train_loss", "val_loss", "test_loss"} <= set(run.metrics)
    assert len(chachaml.runs()) == 1


def test_an_explicit_run_is_used_even_when_another_is_current(tmp_path: Path) -> None:
    chachaml.use_store("t.db")
    target = chachaml.start_run("target")
    chachaml.end_run()
    with pytest.raises(chachaml.RunStateError):
        trainer(tmp_path, ChachamlLogger(run=target.id), epochs=1).fit(Tiny(), loader(), loader())
    resumed = chachaml.start_run(run_id=target.id)
    with chachaml.with_run("other") as other:
        logger = ChachamlLogger(run=resumed)
        trainer(tmp_path, logger, epochs=1).fit(Tiny(), loader(), loader())
    chachaml.end_run()
    assert logger.run_id == target.id
    assert "train_loss" in chachaml.get_run(target.id).metrics
    assert "train_loss" not in chachaml.get_run(other.id).metrics
