"""What a batch's summary.json (the "done" marker) says beyond the scores: the rows of the upload
and where they went, and transactions that arrived out of time order. Predictions writes it for a
batch of one chunk, Merge for a split batch (adding up the chunks' parts): one wording for both.
Also the batch's flag rate, the metric Merge emits once per batch (the FlagRate alarms watch it).
Linked into the predictions and merge packages.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# The summary's (and the execution output's) fields on what became of the upload's rows.
ROW_COUNTS = ("uploaded_rows", "scored_rows", "quarantined_rows", "quarantine_key")
# Later batches named at most (card_history.MAX_NAMED_BATCHES names as many per chunk).
MAX_NAMED_BATCHES = 20
# The per-batch metric (namespace runtime.METRICS_NAMESPACE) that infra/template.yaml's
# FlagRateHighAlarm and FlagRateLowAlarm watch, in percent of the batch's scored rows.
FLAG_RATE_METRIC = "FlagRate"
# Below this many scored rows chance alone leaves the alarm band: at a 4% rate, 200 rows flag
# between 1.5% and 6.5% one time in twenty; 1,000 rows between 2.8% and 5.2%.
FLAG_RATE_MIN_ROWS = 1000


def flag_rate_percent(flagged: int, scored: int) -> float | None:
    """The batch's flag rate in percent, for the FlagRate metric; None for a batch too small for
    its rate to say anything about the model or the data (FLAG_RATE_MIN_ROWS)."""
    if scored < FLAG_RATE_MIN_ROWS:
        return None
    return round(100 * flagged / scored, 4)


def row_counts(upload: object, scored: int) -> dict[str, Any]:
    """Uploaded, scored and quarantined rows and the quarantine key, from DataValidation's
    `upload` counts (as the state machine passes them on; None for a manual run without them)."""
    counts = upload if isinstance(upload, dict) else {}
    values = (counts.get("rows"), scored, counts.get("quarantined_rows"), counts.get("quarantine_key"))
    return dict(zip(ROW_COUNTS, values, strict=True))


def out_of_order(parts: Iterable[object]) -> dict[str, Any]:
    """FeatureEngineering's out-of-order counts of each chunk (disjoint cards), added up, with what
    to do about them when there are any."""
    rows = cards = 0
    named: set[str] = set()
    truncated = False
    for part in parts:
        if not isinstance(part, dict):
            continue
        rows += int(part.get("rows", 0))
        cards += int(part.get("cards", 0))
        listed = list(part.get("later_batches", []))
        truncated = truncated or int(part.get("later_batch_count", len(listed))) > len(listed)
        named.update(listed)
    batches = sorted(named)
    truncated = truncated or len(batches) > MAX_NAMED_BATCHES
    section: dict[str, Any] = {"rows": rows, "cards": cards, "later_batches": batches[:MAX_NAMED_BATCHES]}
    if rows:
        shown = ", ".join(batches[:MAX_NAMED_BATCHES]) + (" and others" if truncated else "")
        section["note"] = (
            f"{rows} row(s) of {cards} card(s) are older than a transaction of the same card that an earlier batch "
            f"already recorded (batches {shown}). These rows were scored with the history before them, but "
            "those later transactions were scored without these rows. To score every transaction in time "
            "order, upload those batches again (same names) now; to avoid it, upload each card's transactions "
            "in time order."
        )
    return section
