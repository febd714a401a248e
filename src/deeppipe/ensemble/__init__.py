"""Ensembling: members declared once under ``ensemble:``, trained by the train stage's own
``fit_experiment``, combined by a method of ``deeppipe.registry.ENSEMBLES`` into one network
(``network.EnsembleNetwork``) stored as one model artifact (``artifact``). Stage functions are in
``stage``; nothing is imported here, so importing the package costs nothing."""
