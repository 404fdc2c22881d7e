"""The score distribution of a split batch, in fixed memory whatever its size.

Quantiles do not add up across chunks, so Merge reads the chunks' scores again. predictions.csv
holds each score rounded to 6 decimals, so a count per millionth (1,000,001 counters, 8 MB) is the
whole distribution: mean, min, max and quantiles come out exactly as numpy's (linear
interpolation) over the written scores; a one-chunk batch's summary, computed by Predictions from
the unrounded scores, differs from them by at most 1e-6.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .runtime import BadInput, s3_client

STEPS = 1_000_000  # scores are written with 6 decimals
READ_ROWS = 200_000
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)  # as Predictions reports them


def score_counts(bucket: str, keys: list[str]) -> np.ndarray:
    """How many scores of the objects fall on each millionth of [0, 1]."""
    counts = np.zeros(STEPS + 1, dtype=np.int64)
    for key in keys:
        body = s3_client().get_object(Bucket=bucket, Key=key)["Body"]
        try:
            for block in pd.read_csv(body, usecols=["fraud_score"], chunksize=READ_ROWS):
                steps = np.rint(block["fraud_score"].to_numpy(dtype=float) * STEPS)
                if not np.isfinite(steps).all() or steps.min() < 0 or steps.max() > STEPS:
                    raise BadInput(f"s3://{bucket}/{key} has fraud_score values outside [0, 1]")
                counts += np.bincount(steps.astype(np.int64), minlength=STEPS + 1)
        except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise BadInput(f"chunk predictions s3://{bucket}/{key} are unreadable: {exc}") from None
        finally:
            body.close()
    return counts


def distribution(counts: np.ndarray) -> dict[str, Any]:
    """Predictions' score_distribution, from score_counts."""
    total = int(counts.sum())
    if not total:
        raise BadInput("the chunks hold no scores")
    cumulative = np.cumsum(counts)
    values = np.arange(STEPS + 1)

    def nth(k: int) -> float:  # the k-th smallest score (0-based)
        return float(np.searchsorted(cumulative, k, side="right")) / STEPS

    def quantile(q: float) -> float:
        position = (total - 1) * q
        low = int(np.floor(position))
        below, above = nth(low), nth(min(low + 1, total - 1))
        return below + (position - low) * (above - below)

    present = np.flatnonzero(counts)
    return {
        "mean": round(float((values * counts).sum()) / total / STEPS, 6),
        "min": round(present[0] / STEPS, 6),
        "max": round(present[-1] / STEPS, 6),
        **{f"p{int(q * 100)}": round(quantile(q), 6) for q in QUANTILES},
    }
