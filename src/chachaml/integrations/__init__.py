"""Framework hooks: each module imports its framework only when it is imported itself.

- ``chachaml.integrations.lightning.ChachamlLogger``: a PyTorch Lightning ``Logger``
  (extra ``lightning``).
- ``chachaml.integrations.transformers.ChachamlCallback``: a Hugging Face ``TrainerCallback``
  (extra ``transformers``).
- ``chachaml.integrations.keras.ChachamlCallback``: a Keras 3 ``Callback`` (extra ``keras``).
- ``chachaml.integrations.optuna.ChachamlCallback``: one child run per trial under a study run
  (extra ``optuna``).
- ``chachaml.integrations.sklearn.log_estimator``: params, score and fitted model in one call
  (extra ``sklearn``).

Importing one of them without its framework raises ``MissingDependencyError`` naming the extra
(``pip install 'chachaml[lightning]'``). Every hook logs through the public verbs with an explicit
``run=``; see docs/integrations.md and docs/adr/0016-framework-hooks-own-their-runs.md.
"""
