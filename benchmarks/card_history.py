"""Per-card history at size: card-history table size vs FeatureEngineering's time per chunk.

    build/venvs/train/bin/python benchmarks/card_history.py [--sizes 10000 100000 1000000]
        [--chunk-rows 125000] [--servers patched stock] [--stock-sample 60]

Needs a python with the layers' packages (pandas, boto3): build/venvs/train (made by
`inv train-model`) or .nox/service_tests (made by `nox -s service_tests`). The moto server runs
from the tooling venv, as in the handler tests.

For each server (stock moto 5.2.5, and moto patched by lambda_ml_layers.local_aws_fixes, whose
Query reads one partition) one CardHistoryTable-shaped table grows through the sizes: earlier
uploads of 125,000 rows each (cards = rows / 40, uploads a month apart) are recorded with
FeatureEngineering's own `card_history.record`. At each size a chunk of `--chunk-rows` rows
(the fan-out's chunk: cards = rows / 40, all of them with history in the table) is run through
FeatureEngineering's per-card history steps, in process, as its handler runs them:
`card_history.load` (one query per card), `features.build_features`, `card_history.record`
(into an empty table of the same shape, so the grown table stays the same between servers).
The query figure is the mean of single queries one after another (client and server on this
machine). On stock moto a whole chunk would take hours at 1M transactions, so its load time is
measured on `--stock-sample` cards (default 60) and scaled to the chunk's cards (marked "est.").

A measurement, not a test: prints a table and writes build/benchmarks/card_history.md.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "services" / "feature_engineering"), str(ROOT / "tests" / "services")]

from lambda_ml_layers.local.moto_server import moto_server  # noqa: E402  (standard library only)

try:
    import numpy as np
    import pandas as pd
    from feature_engineering import card_history, features
except ImportError as missing:
    sys.exit(
        f"error: {missing}. Run this with a python that has the layers' packages: "
        "build/venvs/train/bin/python (inv train-model) or .nox/service_tests/bin/python (nox -s service_tests)."
    )
from svc_helpers import create_card_history_table  # noqa: E402

UPLOAD_ROWS = 125_000
ROWS_PER_CARD = 40  # as benchmarks/pipeline_scale.py: cards = rows / 40, over 30 days
START = pd.Timestamp("2024-01-01", tz="UTC")
CATEGORIES = ["grocery", "restaurant", "fuel", "online_retail", "pharmacy", "electronics", "travel"]


def transactions(rows: int, cards: int, start: pd.Timestamp, prefix: str, seed: int) -> pd.DataFrame:
    """`rows` validated transactions of cards card_0000000.. (`cards` of them), over 30 days."""
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.integers(0, 30 * 86400, rows))
    return pd.DataFrame(
        {
            "transaction_id": [f"{prefix}{n:09d}" for n in range(rows)],
            "card_id": [f"card_{c:07d}" for c in rng.integers(0, cards, rows)],
            "timestamp": start + pd.to_timedelta(seconds, unit="s"),
            "amount": np.round(rng.lognormal(3.3, 1.0, rows), 2),
            "merchant_category": rng.choice(CATEGORIES, rows),
            "channel": rng.choice(["in_store", "online", "atm"], rows),
            "distance_from_home_km": np.round(rng.exponential(12, rows), 1),
        }
    )


def use_table(name: str) -> None:
    os.environ["CARD_HISTORY_TABLE"] = name


def grow(table: str, held: int, uploads: int, target: int, cards: int) -> tuple[int, int]:
    """Record earlier uploads into `table` until it holds `target` transactions: (held, uploads).
    Each upload is a batch of its own, starting 30 days after the one before."""
    use_table(table)
    while held < target:
        rows = min(UPLOAD_ROWS, target - held)
        population = max(cards, target // ROWS_PER_CARD)
        frame = transactions(rows, population, START + pd.Timedelta(days=30 * uploads), f"h{uploads:03d}_", uploads)
        card_history.record(frame, f"upload-{uploads:03d}")
        held, uploads = held + rows, uploads + 1
    return held, uploads


def query_ms(cards: list[str], first: pd.Timestamp) -> float:
    """Mean time of one card's history query, one after another."""
    started = time.perf_counter()
    for card in cards:
        card_history._card_history(card, first)
    return (time.perf_counter() - started) / len(cards) * 1000


def run_chunk(chunk: pd.DataFrame, sample: int | None, endpoint: str) -> dict[str, Any]:
    """FeatureEngineering's per-card history steps on the chunk: seconds per step."""
    cards = chunk["card_id"].unique()
    measured = chunk[chunk["card_id"].isin(cards[:sample])] if sample else chunk
    started = time.perf_counter()
    history = card_history.load(measured)
    load_s = (time.perf_counter() - started) * len(cards) / measured["card_id"].nunique()
    started = time.perf_counter()
    features.build_features(measured, history)
    build_s = (time.perf_counter() - started) * len(chunk) / len(measured)
    use_table(create_card_history_table(endpoint))
    started = time.perf_counter()
    card_history.record(chunk if not sample else measured, "bench-chunk")
    record_s = (time.perf_counter() - started) * len(cards) / measured["card_id"].nunique()
    return {"load": load_s, "build": build_s, "record": record_s, "estimated": bool(sample), "history": len(history)}


def measure(server_kind: str, sizes: list[int], chunk_rows: int, stock_sample: int) -> list[list[str]]:
    lines = []
    chunk_cards = max(1, chunk_rows // ROWS_PER_CARD)
    with moto_server(stock=server_kind == "stock") as server:
        os.environ.update(server.client_env())
        card_history._client.cache_clear()  # a client of this server
        table, held, uploads = create_card_history_table(server.endpoint_url), 0, 0
        for size in sizes:
            started = time.perf_counter()
            held, uploads = grow(table, held, uploads, size, chunk_cards)
            filled = time.perf_counter() - started
            items = server.client("dynamodb").describe_table(TableName=table)["Table"]["ItemCount"]
            later = START + pd.Timedelta(days=30 * uploads)
            chunk = transactions(chunk_rows, chunk_cards, later, "c_", 99)
            use_table(table)
            sample_cards = random.Random(1).sample(sorted(chunk["card_id"].unique()), min(20, chunk_cards))
            per_query = query_ms(sample_cards, later)
            steps = run_chunk(chunk, stock_sample if server_kind == "stock" else None, server.endpoint_url)
            total = steps["load"] + steps["build"] + steps["record"]
            mark = " est." if steps["estimated"] else ""
            lines.append(
                [
                    server_kind,
                    f"{held:,}",
                    f"{items:,}",
                    f"{per_query:.1f}",
                    f"{steps['load']:.1f}{mark}",
                    f"{steps['build']:.1f}",
                    f"{steps['record']:.1f}",
                    f"**{total:.1f}**{mark}",
                ]
            )
            print("| " + " | ".join(lines[-1]) + f" |  (table grown in {filled:.0f} s)", flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--chunk-rows", type=int, default=125_000)
    parser.add_argument("--servers", nargs="+", choices=["stock", "patched"], default=["patched", "stock"])
    parser.add_argument("--stock-sample", type=int, default=60, help="cards measured on stock moto")
    args = parser.parse_args()
    header = [
        "| moto | transactions in table | items | ms per query | load s | build_features s | record s | chunk s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    print(f"chunk: {args.chunk_rows:,} rows, {args.chunk_rows // ROWS_PER_CARD:,} cards")
    print(header[0], flush=True)
    lines = list(header)
    for kind in args.servers:
        lines += [
            "| " + " | ".join(cells) + " |" for cells in measure(kind, args.sizes, args.chunk_rows, args.stock_sample)
        ]
    target = ROOT / "build" / "benchmarks" / "card_history.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(f"chunk: {args.chunk_rows:,} rows\n\n" + "\n".join(lines) + "\n")
    print(f"written to {target}")


if __name__ == "__main__":
    main()
