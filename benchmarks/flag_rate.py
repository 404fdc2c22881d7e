"""The shipped model's flag rate on fresh batches against the generator's true fraud rate.

    .venv/bin/python benchmarks/flag_rate.py [--rows 5000 100000 1000000] [--seed 20240602]

Issue 21's "done when": on a fresh 1M-row batch from another seed than training, the share of
rows the model flags is within 2x of the true fraud rate. For each size: the model `inv
train-model` ships (trained on build/data/, lambda_ml_layers/local/training.py; reused from
build/model-cache/ when its inputs are unchanged), a batch drawn by data/generate_transactions.py
with `--seed` (training uses the generator's default seed) and about rows / 27 cards, scored with
the production feature code (feature_engineering.features.feature_table, the whole batch as a
fresh stage's first upload: no earlier history) and the threshold recorded in model.json, as
Predictions does. Prints rows, seed, true rate, flag rate, their ratio, precision and recall, and
writes build/benchmarks/flag_rate.md. Not a test (minutes at 1M rows): docs/pipeline.md has the result.

The scoring runs in the training venv (numpy 2.5, the layers' packages): this file calls itself
there with --score.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SEED = 20240602  # training uses data/generate_transactions.py's SEED, 20240601
ROWS_PER_CARD = 27  # the generator's average over its 61 days (271,824 rows from 10,000 cards)
COLUMNS = ["rows", "seed", "true rate", "flag rate", "ratio", "precision", "recall", "seconds"]


def score(data: Path, model_dir: Path) -> dict[str, Any]:
    """In the training venv: the batch scored as Predictions scores it, against its labels."""
    services = ROOT / "services"
    sys.path[:0] = [
        str(services / "training"),
        str(services / "data_validation"),
        str(services / "feature_engineering"),
    ]
    import joblib
    import trainer
    from feature_engineering import features

    frame = trainer.load_training_frame(data)  # the production schema check; labels kept
    manifest = json.loads((model_dir / "model.json").read_text())
    bundle = joblib.load(model_dir / "model.joblib")
    table = features.feature_table(frame, bundle["preprocessor"])
    scores = bundle["model"].predict_proba(table[manifest["feature_names"]].to_numpy(dtype=float))[:, 1]
    flagged = scores >= float(manifest["threshold"])
    labels = frame.set_index("transaction_id")[trainer.TARGET].reindex(table["transaction_id"]).to_numpy(dtype=int)
    hits = int((flagged & (labels == 1)).sum())
    return {
        "rows": len(table),
        "true_rate": float(labels.mean()),
        "flag_rate": float(flagged.mean()),
        "precision": hits / max(1, int(flagged.sum())),
        "recall": hits / max(1, int(labels.sum())),
        "threshold": float(manifest["threshold"]),
        "expected_flag_rate": manifest.get("expected_flag_rate"),
        "model_version": manifest["model_version"],
    }


def measure(rows: int, seed: int, model_dir: Path, python: Path, scratch: Path) -> list[str]:
    data = scratch / f"batch-{rows}-{seed}.csv"
    cards = max(1, math.ceil(rows / ROWS_PER_CARD))
    generator = ROOT / "data" / "generate_transactions.py"
    subprocess.run([sys.executable, generator, "--cards", str(cards), "--seed", str(seed), "--out", data], check=True)
    started = time.perf_counter()
    found = subprocess.run(
        [python, __file__, "--score", str(data), "--model", str(model_dir)], check=True, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    result = json.loads(found.stdout.strip().splitlines()[-1])
    print(
        f"  model {result['model_version']}, threshold {result['threshold']:.4f}, expected flag rate "
        f"{result['expected_flag_rate']:.2%} on its held-out days",
        flush=True,
    )
    return [
        f"{result['rows']:,}",
        str(seed),
        f"{result['true_rate']:.2%}",
        f"{result['flag_rate']:.2%}",
        f"{result['flag_rate'] / result['true_rate']:.2f}",
        f"{result['precision']:.1%}",
        f"{result['recall']:.1%}",
        f"{seconds:.0f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[5_000, 100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--score", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.score is not None:
        print(json.dumps(score(args.score, args.model)))
        return

    sys.path.insert(0, str(ROOT))
    from lambda_ml_layers.local.training import VENV, TrainRequest, train_model

    model_dir = ROOT / "build" / "model"
    started = time.perf_counter()
    train_model(TrainRequest(root=ROOT, out_dir=model_dir))
    print(f"model ready in {time.perf_counter() - started:.0f} s", flush=True)
    table = []
    with tempfile.TemporaryDirectory(dir=ROOT / "build", prefix="flag-rate-") as scratch:
        for rows in args.rows:
            table.append(measure(rows, args.seed, model_dir, ROOT / VENV / "bin" / "python", Path(scratch)))
            print(" | ".join(table[-1]), flush=True)
    lines = [f"| {' | '.join(COLUMNS)} |", f"|{'---|' * len(COLUMNS)}", *(f"| {' | '.join(r)} |" for r in table)]
    out = ROOT / "build" / "benchmarks" / "flag_rate.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
