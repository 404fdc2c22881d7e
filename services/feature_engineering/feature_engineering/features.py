"""Feature definitions, shared by this function and by training (`inv train-model`).

Training imports this module from services/feature_engineering, so the features a model
was fitted on and the features computed in production are the same code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler

ID_COLUMNS = ["transaction_id", "card_id"]
INPUT_COLUMNS = [
    "transaction_id",
    "card_id",
    "timestamp",
    "amount",
    "merchant_category",
    "channel",
    "distance_from_home_km",
]
CATEGORICAL = ["merchant_category", "channel"]
NUMERIC = [
    "hour",
    "day_of_week",
    "is_weekend",
    "is_night",
    "log_amount",
    "log_distance_km",
    "log_hours_since_prev",
    "amount_to_card_median",
    "card_txns_24h",
    "card_amount_24h_log",
]
# A card's first transaction ever seen has no previous one: treat the gap as long.
NO_PREVIOUS_HOURS = 24.0 * 30
HISTORY = 10  # previous transactions in the per-card median
WINDOW = pd.Timedelta(hours=24)  # the per-card rolling count and sum
# What per-card history keeps of each transaction (card_history.py stores these outside the batch).
HISTORY_COLUMNS = ["transaction_id", "card_id", "timestamp", "amount"]


def parse_validated(frame: pd.DataFrame) -> pd.DataFrame:
    """Types for a frame read back from CSV (DataValidation has already checked every cell)."""
    missing = [c for c in INPUT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"columns {missing} are missing")
    out = frame.copy()
    out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True, format="ISO8601")
    out["amount"] = out["amount"].astype(float)
    out["distance_from_home_km"] = out["distance_from_home_km"].astype(float)
    return out


def build_features(frame: pd.DataFrame, history: pd.DataFrame | None = None) -> pd.DataFrame:
    """Date parts, per-card lags and rolling windows; one row per input row, same order.

    `history`: the cards' earlier transactions from outside the batch (HISTORY_COLUMNS; rows of
    this batch in it are ignored). Per-card features look back over batch and history together,
    ordered by (timestamp, transaction_id), so a transaction gets the same features whether it
    arrived in one batch or twenty, and training (one frame, no history) computes them alike.
    """
    df = frame.reset_index(drop=True).copy()
    df["_order"] = np.arange(len(df))
    if history is not None and len(history):
        earlier = history.loc[~history["transaction_id"].isin(df["transaction_id"]), HISTORY_COLUMNS]
        df = pd.concat([df, earlier.assign(_order=-1)], ignore_index=True)
    df = df.sort_values(["card_id", "timestamp", "transaction_id"], kind="stable")
    ts = df["timestamp"]
    df["hour"] = ts.dt.hour
    df["day_of_week"] = ts.dt.day_of_week
    df["is_weekend"] = (df["day_of_week"] >= 5).astype(int)
    df["is_night"] = (df["hour"] < 6).astype(int)
    df["log_amount"] = np.log1p(df["amount"])
    df["log_distance_km"] = np.log1p(df["distance_from_home_km"])

    # One grouped pass per feature (pandas' grouped windows), not a Python loop over cards.
    by_card = df.groupby("card_id", sort=False)
    gap = by_card["timestamp"].diff().dt.total_seconds() / 3600
    df["log_hours_since_prev"] = np.log1p(gap.fillna(NO_PREVIOUS_HOURS).clip(lower=0))
    # Median of the card's previous purchases (shifted: a row never sees itself).
    previous_amounts = by_card["amount"].shift(1)
    previous = previous_amounts.groupby(df["card_id"], sort=False).rolling(HISTORY, min_periods=1).median()
    df["amount_to_card_median"] = (df["amount"] / previous.droplevel(0)).fillna(1.0)

    # Time-based windows per card over the last 24 hours, the current row included.
    # (Selecting both columns keeps the row labels in the result's index; ["amount"] alone would not.)
    rolled = by_card[["timestamp", "amount"]].rolling("24h", on="timestamp")
    df["card_txns_24h"] = rolled.count()["amount"].droplevel(0)
    df["card_amount_24h_log"] = np.log1p(rolled.sum()["amount"].droplevel(0))
    df = df[df["_order"] >= 0]  # history rows only informed the batch's rows
    return df.sort_values("_order").drop(columns="_order").reset_index(drop=True)


def make_preprocessor() -> ColumnTransformer:
    """The fitted step of the pipeline: one-hot categories, scaled numbers (fitted in training)."""
    return ColumnTransformer(
        [
            ("numeric", StandardScaler(), NUMERIC),
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
        ],
        verbose_feature_names_out=False,
    )


def feature_table(
    frame: pd.DataFrame, preprocessor: ColumnTransformer, history: pd.DataFrame | None = None
) -> pd.DataFrame:
    """IDs plus the transformed feature columns, named as the preprocessor names them."""
    engineered = build_features(frame, history)
    values = preprocessor.transform(engineered[NUMERIC + CATEGORICAL])
    table = pd.DataFrame(values, columns=list(preprocessor.get_feature_names_out()))
    return pd.concat([engineered[ID_COLUMNS].reset_index(drop=True), table], axis=1)
