"""Framework hooks: each module imports its framework only when it is imported itself.

=========================================  ==========================================  ==============
module                                     what                                        extra
=========================================  ==========================================  ==============
``chachaml.integrations.lightning``        ``ChachamlLogger``, a Lightning ``Logger``  ``lightning``
``chachaml.integrations.transformers``     ``ChachamlCallback``, a ``TrainerCallback``  ``transformers``
``chachaml.integrations.keras``            ``ChachamlCallback``, a Keras 3 ``Callback`` ``keras``
``chachaml.integrations.optuna``           ``ChachamlCallback``, one child run a trial  ``optuna``
``chachaml.integrations.sklearn``          ``log_estimator(estimator, X, y)``          ``sklearn``
=========================================  ==========================================  ==============

Importing one of them without its framework raises ``MissingDependencyError`` naming the extra
(``pip install 'chachaml[lightning]'``). Every hook logs through the public verbs with an explicit
``run=``; see docs/integrations.md and docs/adr/0010-framework-hooks-own-their-runs.md.
"""
