"""Merge: join a split batch's per-chunk results into the outputs a small batch gets."""
