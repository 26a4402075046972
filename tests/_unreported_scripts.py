"""Tiny trainings that raise part-way, shared by tests/test_integration_unreported.py: imported by
the tests themselves and by the scripts, prompts and notebook cells they run in real interpreters.

Each ``train_*`` function trains on tiny data on the CPU with the chachaml hook ``callback`` and
raises ``RuntimeError`` (or ``raise_type``) inside a training step, after some metrics are logged.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "torch")


def keras_fit(callback: Any, fail_at_step: int = 6, raise_type: type[BaseException] = RuntimeError) -> Any:
    """``model.fit`` for 3 epochs of 4 steps; a callback raises at global step ``fail_at_step``
    (step 6 is in the second epoch, so the first epoch's metrics are logged)."""
    import keras
    import numpy as np

    class Explode(keras.callbacks.Callback):
        steps = 0

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.steps += 1
            if self.steps == fail_at_step:
                raise raise_type(f"step {fail_at_step} exploded")

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="mse")
    return model.fit(
        x, x.sum(axis=1, keepdims=True), epochs=3, batch_size=8, verbose=0, callbacks=[callback, Explode()]
    )


def transformers_train(
    callback: Any, output_dir: str, fail_at_step: int = 3, raise_type: type[BaseException] = RuntimeError
) -> Any:
    """``Trainer.train`` of a tiny BERT whose forward pass raises at training step
    ``fail_at_step`` (the loss of the steps before is logged: ``logging_steps=1``)."""
    import torch
    import transformers

    class Fragile(transformers.BertForSequenceClassification):
        calls = 0

        def forward(self, *args: Any, **kwargs: Any) -> Any:
            if self.training:
                Fragile.calls += 1
                if Fragile.calls == fail_at_step:
                    raise raise_type(f"step {fail_at_step} exploded")
            return super().forward(*args, **kwargs)

    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=32,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        num_labels=2,
    )
    gen = torch.Generator().manual_seed(0)
    rows = [
        {"input_ids": row, "attention_mask": torch.ones(6, dtype=torch.long), "labels": int(row[0] % 2)}
        for row in torch.randint(1, 30, (8, 6), generator=gen)
    ]
    args = transformers.TrainingArguments(
        output_dir=output_dir,
        num_train_epochs=2,
        per_device_train_batch_size=2,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        remove_unused_columns=False,  # Fragile.forward(*args, **kwargs) hides BERT's signature
    )
    trainer = transformers.Trainer(model=Fragile(config), args=args, train_dataset=rows, callbacks=[callback])
    return trainer.train()


def optuna_objective(fail_at_trial: int, raise_type: type[BaseException] = ValueError) -> Any:
    """An objective that raises in trial ``fail_at_trial`` and returns ``(x - 1) ** 2`` otherwise.

    Later trials first wait until the failing one is recorded as failed, then pause briefly (a
    sleep releases the GIL), so the failing trial's future is finished long before the last trial
    is submitted. Without that, ``optimize(n_jobs > 1)`` can return normally: Optuna re-raises a
    trial's exception only from futures it waits on while submitting, and one still in flight
    when the last trial is submitted is never checked (seen here: ~4 runs in 10 with plain Optuna).
    """
    import time

    def failed_already(trial: Any) -> bool:
        trials = trial.study.get_trials(deepcopy=False)
        return any(t.number == fail_at_trial and t.state.name == "FAIL" for t in trials)

    def objective(trial: Any) -> float:
        x = trial.suggest_float("x", -4, 4)
        if trial.number == fail_at_trial:
            raise raise_type(f"trial {fail_at_trial} exploded")
        if trial.number > fail_at_trial:
            deadline = time.monotonic() + 60
            while not failed_already(trial) and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.05)
        return float((x - 1) ** 2)

    return objective
