"""Operating a deployed stage: which layer versions are used (and pruning the rest), cold starts."""
