"""Hyperparameter search with Optuna: the ``tune:`` section (config), the space as data (space),
the checks ``deeppipe validate`` runs (checks), Optuna's samplers and pruners by name (samplers),
the study's storage and crash recovery (storage), one trial (objective), the study and its
workers (study), MLflow child runs (tracking), figures (plots), kept models (keep) and the stage
functions (stage: ``tune``, ``apply_best``)."""
