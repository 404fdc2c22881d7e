"""Generate the pipeline's synthetic card-transaction data set (deterministic, stdlib only).

    python data/generate_transactions.py            # rewrites data/sample/transactions.csv
    python data/generate_transactions.py --check    # exit 1 if the committed sample differs
    python data/generate_transactions.py --cards 10000 --seed 11 --out build/data/big.csv

The sample is 120 cards over 61 days (3,233 rows); `--cards` scales the same story to any size
(about 27 rows a card: 10,000 cards make some 270,000 rows), and `--seed` gives an independent
draw of it (the model is trained on one seed and judged on another: benchmarks/flag_rate.py).

Why synthetic: no public fraud data set ships inside a package the layers carry, and a
generator with a fixed seed is reproducible byte for byte on any Python (it uses only
`random.Random`, whose sequence is stable across versions, never numpy's).

The story: cards make ordinary purchases near home at their own typical amounts; some cards
get compromised on a day, after which bursts of large, distant, often night-time, online or
high-resale purchases follow. Legitimate outliers (travel, a big purchase) and quiet frauds
keep the signal realistic rather than perfectly separable.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import random
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

SEED = 20240601
N_CARDS = 120
START = datetime(2024, 3, 1, tzinfo=UTC)
DAYS = 61
SAMPLE = Path(__file__).parent / "sample" / "transactions.csv"

COLUMNS = [
    "transaction_id",
    "card_id",
    "timestamp",
    "amount",
    "merchant_category",
    "channel",
    "distance_from_home_km",
    "is_fraud",
]
# Everyday spending mix, and the categories fraudsters favour (easy to resell or cash out).
EVERYDAY = {
    "grocery": 0.34,
    "restaurant": 0.22,
    "fuel": 0.16,
    "online_retail": 0.14,
    "pharmacy": 0.07,
    "electronics": 0.03,
    "travel": 0.02,
    "cash_withdrawal": 0.02,
}
FRAUDY = {"electronics": 0.32, "online_retail": 0.28, "cash_withdrawal": 0.18, "jewelry": 0.14, "travel": 0.08}
CATEGORY_SCALE = {
    "grocery": 1.0,
    "restaurant": 0.8,
    "fuel": 1.1,
    "online_retail": 1.3,
    "pharmacy": 0.6,
    "electronics": 4.0,
    "travel": 6.0,
    "cash_withdrawal": 2.0,
    "jewelry": 5.0,
}


@dataclass(frozen=True)
class Card:
    card_id: str
    typical_amount: float
    daily_rate: float
    online_share: float
    compromised_on: int | None  # day index, or None


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _channel(rng: random.Random, category: str, online_share: float) -> str:
    if category == "cash_withdrawal":
        return "atm"
    if category == "online_retail":
        return "online"
    return "online" if rng.random() < online_share else "in_store"


def _legit(rng: random.Random, card: Card, when: datetime) -> dict[str, object]:
    category = _pick(rng, EVERYDAY)
    amount = card.typical_amount * CATEGORY_SCALE[category] * rng.lognormvariate(0, 0.45)
    travelling = category == "travel" or rng.random() < 0.03
    distance = rng.uniform(300, 6000) if travelling else rng.expovariate(1 / 8)
    return {
        "timestamp": when,
        "amount": amount,
        "merchant_category": category,
        "channel": _channel(rng, category, card.online_share),
        "distance_from_home_km": distance,
        "is_fraud": 0,
    }


def _fraud(rng: random.Random, card: Card, when: datetime) -> dict[str, object]:
    quiet = rng.random() < 0.2  # some frauds imitate the card's normal use
    category = _pick(rng, EVERYDAY if quiet else FRAUDY)
    scale = rng.uniform(0.8, 1.5) if quiet else rng.uniform(2.5, 9.0)
    amount = card.typical_amount * CATEGORY_SCALE[category] * scale
    distance = rng.expovariate(1 / 20) if quiet else rng.uniform(200, 9000)
    channel = "online" if rng.random() < 0.6 else _channel(rng, category, card.online_share)
    return {
        "timestamp": when,
        "amount": amount,
        "merchant_category": category,
        "channel": channel,
        "distance_from_home_km": distance,
        "is_fraud": 1,
    }


def _daytime(rng: random.Random, day: datetime, night_bias: float) -> datetime:
    hour = rng.randint(0, 5) if rng.random() < night_bias else int(rng.triangular(7, 23, 14))
    return day + timedelta(hours=hour, minutes=rng.randint(0, 59), seconds=rng.randint(0, 59))


def generate(seed: int = SEED, cards: int = N_CARDS, days: int = DAYS) -> list[dict[str, object]]:
    """Every transaction, sorted by time, with ids assigned in that order. The defaults make the
    committed sample; the random draws happen in the same order for any size."""
    rng = random.Random(seed)
    card_list = [
        Card(
            card_id=f"card_{i:04d}",  # 4 digits in the sample; more for larger sets
            typical_amount=rng.lognormvariate(math.log(35), 0.5),
            daily_rate=rng.uniform(0.15, 0.7),
            online_share=rng.uniform(0.05, 0.4),
            compromised_on=rng.randint(10, days - 3) if rng.random() < 0.14 else None,
        )
        for i in range(1, cards + 1)
    ]
    rows: list[dict[str, object]] = []
    for card in card_list:
        for day_index in range(days):
            day = START + timedelta(days=day_index)
            for _ in range(_poisson(rng, card.daily_rate)):
                rows.append({"card_id": card.card_id, **_legit(rng, card, _daytime(rng, day, 0.04))})
            compromised = card.compromised_on
            if compromised is not None and compromised <= day_index <= compromised + 2:
                # a burst: several purchases minutes apart, often at night
                when = _daytime(rng, day, 0.45)
                for _ in range(rng.randint(1, 4)):
                    rows.append({"card_id": card.card_id, **_fraud(rng, card, when)})
                    when += timedelta(minutes=rng.randint(2, 90))
    rows.sort(key=lambda r: (r["timestamp"], r["card_id"]))
    for number, row in enumerate(rows, start=1):
        row["transaction_id"] = f"tx_{number:07d}"
    return rows


def _poisson(rng: random.Random, rate: float) -> int:
    # Knuth's method: fine for the small rates used here, and stdlib-only.
    threshold, count, product = math.exp(-rate), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def to_csv(rows: list[dict[str, object]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        when = row["timestamp"]
        assert isinstance(when, datetime)
        writer.writerow(
            {
                **row,
                "timestamp": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "amount": f"{float(row['amount']):.2f}",  # type: ignore[arg-type]
                "distance_from_home_km": f"{float(row['distance_from_home_km']):.1f}",  # type: ignore[arg-type]
            }
        )
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed sample")
    parser.add_argument("--cards", type=int, default=N_CARDS, help=f"how many cards (default {N_CARDS})")
    parser.add_argument("--days", type=int, default=DAYS, help=f"how many days from {START:%Y-%m-%d} (default {DAYS})")
    parser.add_argument("--seed", type=int, default=SEED, help=f"the random seed (default {SEED})")
    parser.add_argument("--out", type=Path, default=SAMPLE, help="where to write the CSV (default: the sample)")
    args = parser.parse_args(argv)
    if args.cards < 1 or args.days < 13:
        # 13: a compromise day is drawn between day 10 and three days before the end.
        parser.error(f"--cards must be at least 1 and --days at least 13 (got {args.cards} and {args.days})")
    text = to_csv(generate(args.seed, args.cards, args.days))
    if args.check:
        if not SAMPLE.exists() or SAMPLE.read_text() != text:
            print(f"{SAMPLE} differs from the generator's output; rerun without --check.")
            return 1
        print(f"{SAMPLE} matches the generator (seed {SEED}).")
        return 0
    write_atomically(args.out, text)
    print(f"wrote {args.out}: {text.count(chr(10)) - 1} rows")
    return 0


def write_atomically(path: Path, text: str) -> None:
    """A temporary file beside the target, renamed over it: an interrupted run leaves the old file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")  # two runs at once write apart
    partial.write_text(text)
    os.replace(partial, path)


if __name__ == "__main__":
    sys.exit(main())
