"""Kedro wiring: node functions (nodes.py) and the per-experiment pipeline (experiment.py)."""
