"""Applications that act on values: robustness checks and other uses of per-row influence."""
