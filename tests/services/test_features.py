"""Feature definitions as pure functions: date parts, per-card lags and rolling windows."""

from __future__ import annotations

import math
import random
import statistics

import numpy as np
import pandas as pd
from feature_engineering import features


def frame(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "transaction_id": t,
                "card_id": c,
                "timestamp": pd.Timestamp(ts, tz="UTC"),
                "amount": a,
                "merchant_category": "grocery",
                "channel": "in_store",
                "distance_from_home_km": 2.0,
            }
            for t, c, ts, a in rows
        ]
    )


def test_lags_and_windows_are_per_card_and_keep_input_order() -> None:
    # Deliberately unsorted and interleaved: card A at 00:00, 01:00, next day 06:00; card B once.
    df = frame(
        [
            ("t3", "A", "2024-04-02T06:00:00", 30.0),
            ("t1", "A", "2024-04-01T00:00:00", 10.0),
            ("b1", "B", "2024-04-01T00:30:00", 99.0),
            ("t2", "A", "2024-04-01T01:00:00", 20.0),
        ]
    )
    out = features.build_features(df).set_index("transaction_id")
    assert list(features.build_features(df)["transaction_id"]) == ["t3", "t1", "b1", "t2"]
    assert out.loc[["t1", "t2", "t3"], "card_txns_24h"].tolist() == [1, 2, 1]
    assert out.loc["b1", "card_txns_24h"] == 1  # other cards never count
    np.testing.assert_allclose(
        out.loc[["t1", "t2", "t3"], "log_hours_since_prev"],
        [math.log1p(features.NO_PREVIOUS_HOURS), math.log1p(1), math.log1p(29)],
    )
    # Each row is compared with the median of the card's *previous* amounts only.
    np.testing.assert_allclose(out.loc[["t1", "t2", "t3"], "amount_to_card_median"], [1.0, 2.0, 2.0])
    np.testing.assert_allclose(out.loc["t2", "card_amount_24h_log"], math.log1p(30.0))
    assert out.loc["t1", "hour"] == 0 and out.loc["t3", "day_of_week"] == 1  # 2024-04-02 a Tuesday
    assert out.loc["t1", "is_night"] == 1 and out.loc["t3", "is_night"] == 0


def test_feature_table_has_ids_and_named_columns() -> None:
    df = frame([("t1", "A", "2024-04-06T10:00:00", 10.0), ("t2", "A", "2024-04-06T12:00:00", 50.0)])
    preprocessor = features.make_preprocessor().fit(
        features.build_features(df)[features.NUMERIC + features.CATEGORICAL]
    )
    table = features.feature_table(df, preprocessor)
    assert list(table.columns[:2]) == features.ID_COLUMNS
    assert "merchant_category_grocery" in table.columns and "log_amount" in table.columns
    assert len(table) == 2 and np.isfinite(table.iloc[:, 2:].to_numpy(dtype=float)).all()


def reference_card_features(df: pd.DataFrame) -> pd.DataFrame:
    """The per-card features from their definitions, one transaction at a time (slow, plain)."""
    out = {}
    for _, card in df.sort_values(["card_id", "timestamp", "transaction_id"]).groupby("card_id"):
        rows = list(card[["transaction_id", "timestamp", "amount"]].itertuples(index=False))
        for i, (tx, ts, amount) in enumerate(rows):
            before = [r.amount for r in rows[max(0, i - features.HISTORY) : i]]
            window = [r.amount for r in rows[: i + 1] if r.timestamp > ts - features.WINDOW]  # (t - 24h, t]
            gap = (ts - rows[i - 1].timestamp).total_seconds() / 3600 if i else features.NO_PREVIOUS_HOURS
            out[tx] = {
                "log_hours_since_prev": math.log1p(gap),
                "amount_to_card_median": amount / statistics.median(before) if before else 1.0,
                "card_txns_24h": float(len(window)),
                "card_amount_24h_log": math.log1p(sum(window)),
            }
    return pd.DataFrame.from_dict(out, orient="index")


def test_per_card_features_match_their_definitions_on_many_cards() -> None:
    """Vectorized windows (pandas grouped rolling) against the one-row-at-a-time definition:
    cards with more than HISTORY earlier rows, windows across days, repeated timestamps."""
    rng = random.Random(3)
    start = pd.Timestamp("2024-04-01", tz="UTC")
    df = frame(
        [
            (
                f"t{n:04d}",
                f"card{rng.randrange(7)}",
                (start + pd.Timedelta(minutes=rng.randrange(0, 5 * 24 * 60, 30))).strftime("%Y-%m-%dT%H:%M:%S"),
                round(rng.uniform(1, 300), 2),
            )
            for n in range(400)
        ]
    )
    out = features.build_features(df).set_index("transaction_id")
    expected = reference_card_features(df).rename_axis("transaction_id")
    assert df.duplicated(["card_id", "timestamp"]).any()  # ties within a card: ordered by transaction id
    columns = list(expected.columns)
    pd.testing.assert_frame_equal(out.loc[expected.index, columns], expected, check_exact=False, rtol=1e-12)
