"""The parts of the fan-out whose point is size: validation memory that does not grow with the
upload, and Merge's multipart joins with parts under and over S3's 5 MiB minimum."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from merge import concat
from svc_helpers import read_json

SERVICES = Path(__file__).resolve().parents[2] / "services"
MiB = 1024 * 1024
HEADER = "transaction_id,card_id,timestamp,amount,merchant_category,channel,distance_from_home_km\n"


def transactions(size: int, seed: int = 7) -> str:
    """Valid rows until `size` bytes of CSV (stdlib random: the same on every run)."""
    rng = random.Random(seed)
    lines, total, n = [HEADER], len(HEADER), 0
    while total < size:
        line = (
            f"tx_{n:09d},card_{rng.randrange(20_000):06d},2024-06-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:00Z,"
            f"{rng.uniform(1, 500):.2f},{rng.choice(['grocery', 'fuel', 'travel'])},{rng.choice(['online', 'atm'])},"
            f"{rng.uniform(0, 80):.1f}\n"
        )
        lines.append(line)
        total += len(line)
        n += 1
    return "".join(lines)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"test-scale-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


# Holding a 50 MB upload the old way (bytes, text, a frame of strings, typed copies) took about
# 10x its size in RSS (774 MB for 73 MB, issue 10); streamed, it is a few blocks of 50,000 rows.
# Measured: 101 MB of growth for 50 MB (716,038 rows), most of it one block's frames.
UPLOAD_BYTES = 50 * 1000 * 1000
GROWTH_BOUND_MB = 160

# Run in a fresh interpreter, so its peak RSS (VmHWM) is this validation's own: the RSS after the
# handler's imports, and the peak after validating the upload.
VALIDATE_IN_A_CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
from data_validation import handler

def rss(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field)) / 1024

before = rss("VmHWM:")
result = handler.lambda_handler({"bucket": sys.argv[2], "key": "incoming/big.csv"}, None)
print(json.dumps({"result": result, "before_mb": before, "peak_mb": rss("VmHWM:")}))
"""


def test_a_50_mb_upload_is_validated_in_bounded_memory(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="incoming/big.csv", Body=transactions(UPLOAD_BYTES).encode())
    child = subprocess.run(
        [sys.executable, "-c", VALIDATE_IN_A_CHILD, str(SERVICES / "data_validation"), bucket],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ,
        timeout=600,
    )
    measured = json.loads(child.stdout.splitlines()[-1])
    result, growth = measured["result"], measured["peak_mb"] - measured["before_mb"]

    assert result["status"] == "passed" and result["rows"] > 600_000, result
    assert len(result["chunks"]) == 9  # 50 MB in chunks of ~6 MB
    assert growth < GROWTH_BOUND_MB, f"validating 50 MB grew the RSS by {growth:.0f} MB"
    assert read_json(s3, bucket, "reports/big/validation.json")["chunks"] == 9


def sources(s3: Any, bucket: str, sizes: list[int]) -> tuple[list[str], bytes]:
    """CSV objects of about `sizes` bytes each, one header each; and their rows joined."""
    keys, expected = [], HEADER.encode()
    for number, size in enumerate(sizes):
        body = transactions(size, seed=number).encode()
        key = f"chunks/predictions/b/r/{number:04d}.csv"
        s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"source-revision": "r"})
        keys.append(key)
        expected += body[len(HEADER) :]
    return keys, expected


@pytest.mark.parametrize(
    ("sizes", "parts"),
    [
        # over, under, under (too short together), over (tops them up, then its rest is copied), under (last)
        ([6 * MiB, 1 * MiB, 2 * MiB, 7 * MiB + 300_000, 3 * MiB], 4),
        ([20_000, 30_000, 10_000], 1),  # all under: read and sent as one (last) part
    ],
)
def test_merge_joins_parts_under_and_over_5_mib(s3: Any, bucket: str, sizes: list[int], parts: int) -> None:
    keys, expected = sources(s3, bucket, sizes)

    pieces = concat.plan(bucket, keys, "r")
    concat.join(bucket, pieces, "predictions/b/predictions.csv", {"source-revision": "r"})

    merged = s3.get_object(Bucket=bucket, Key="predictions/b/predictions.csv")
    assert merged["Body"].read() == expected  # one header, every row once, in order
    assert merged["ETag"].strip('"').endswith(f"-{parts}")  # a multipart object of that many parts
    assert merged["Metadata"] == {"source-revision": "r"}


def test_merge_refuses_a_chunk_of_another_run(s3: Any, bucket: str) -> None:
    keys, _ = sources(s3, bucket, [1000, 1000])
    s3.put_object(Bucket=bucket, Key=keys[1], Body=HEADER.encode(), Metadata={"source-revision": "newer"})
    with pytest.raises(concat.Superseded, match="belongs to revision newer"):
        concat.plan(bucket, keys, "r")
