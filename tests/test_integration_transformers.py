"""ChachamlCallback with the real transformers Trainer: a tiny BERT built from a config, on the
CPU, no download (issue 11 part 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import chachaml
from _frameworks import need

pytestmark = pytest.mark.frameworks

torch = need("torch")
transformers = need("transformers")
need("accelerate")  # the Trainer needs it
from chachaml.integrations.transformers import ChachamlCallback  # noqa: E402


class Boom(transformers.TrainerCallback):  # type: ignore[misc,name-defined]
    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == 2:
            raise RuntimeError("out of memory (pretend)")


def dataset() -> list[dict[str, Any]]:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 30, (8, 6), generator=gen)
    return [
        {"input_ids": row, "attention_mask": torch.ones(6, dtype=torch.long), "labels": int(row[0] % 2)}
        for row in ids
    ]


def make_trainer(tmp_path: Path, callbacks: list[Any]) -> Any:
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=32,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        num_labels=2,
    )
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"),
        num_train_epochs=2,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        learning_rate=0.01,
        logging_steps=1,
        eval_strategy="epoch",
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
    )
    return transformers.Trainer(
        model=transformers.BertForSequenceClassification(config),
        args=args,
        train_dataset=dataset(),
        eval_dataset=dataset(),
        callbacks=callbacks,
    )


def test_with_no_current_run_train_and_a_later_evaluate_land_in_one_completed_run(tmp_path: Path) -> None:
    chachaml.use_store("t.db")
    callback = ChachamlCallback(name="bert", experiment="nlp")
    trainer = make_trainer(tmp_path, [callback])
    trainer.train()
    assert chachaml.current_run() is None
    run = chachaml.get_run(callback.run_id)
    assert (run.name, run.experiment, run.status) == ("bert", "nlp", "completed")
    assert run.params["learning_rate"] == 0.01 and run.params["num_train_epochs"] == 2
    assert run.params["model.hidden_size"] == 8
    losses = chachaml.metric_history(run.id, "loss")
    assert [p.step for p in losses] == [1, 2, 3, 4], "one point per logging step, at the global step"
    assert [p.step for p in chachaml.metric_history(run.id, "eval_loss")] == [2, 4]
    assert "train_runtime" in run.metrics

    trainer.evaluate()
    run = chachaml.get_run(callback.run_id)
    assert run.status == "completed", "evaluate reopened the run for its metrics and ended it again"
    assert len(chachaml.metric_history(run.id, "eval_loss")) == 3
    assert len(chachaml.runs()) == 1


def test_inside_a_run_the_callback_logs_there(tmp_path: Path) -> None:
    chachaml.use_store("t.db")
    with chachaml.with_run("mine") as mine:
        callback = ChachamlCallback()
        make_trainer(tmp_path, [callback]).train()
        assert callback.run_id == mine.id
        assert chachaml.current_run().status == "running"  # type: ignore[union-attr]
    run = chachaml.get_run(mine.id)
    assert run.status == "completed" and "loss" in run.metrics and run.params["model.vocab_size"] == 32
    assert len(chachaml.runs()) == 1


def test_a_training_that_raises_leaves_no_current_run_and_the_next_one_fails_it_and_starts_afresh(
    tmp_path: Path,
) -> None:
    chachaml.use_store("t.db")
    callback = ChachamlCallback()
    with pytest.raises(RuntimeError, match="out of memory"):
        make_trainer(tmp_path, [callback, Boom()]).train()
    first = callback.run_id
    assert first is not None
    assert chachaml.current_run() is None, "the Trainer does not tell callbacks: no stale current run"
    assert chachaml.get_run(first).status == "running"
    make_trainer(tmp_path, [callback]).train()
    failed = chachaml.get_run(first)
    assert failed.status == "failed" and failed.error is not None
    assert "without reporting its end" in failed.error["message"]
    assert callback.run_id != first
    assert chachaml.get_run(callback.run_id).status == "completed"
