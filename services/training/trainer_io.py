"""trainer.py's edges: reading the data, the output folder, AWS credentials and the upload.

Each failure a user can fix is a TrainingInputError naming the file, folder or bucket and the
fix; trainer.main prints it as one "error: ..." line and exits INPUT_EXIT, which
`inv train-model` (lambda_ml_layers/local/training.py) shows as its own message.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

STACK_PREFIX = "lambda-ml-layers"  # infra/template.yaml names the model bucket from this
INPUT_EXIT = 4  # TrainingInputError: the data, --out or credentials; its message is stderr's last "error: " line
ERROR_PREFIX = "error: "
SAMPLE_FIX = "the sample is data/sample/transactions.csv, rewritten by `python data/generate_transactions.py`"


class TrainingInputError(Exception):
    """The data, the output folder or the AWS credentials are not usable: the message names which and the fix."""


def model_bucket_name(stage: str, account: str) -> str:
    """The same name infra/template.yaml gives ModelBucket."""
    return f"{STACK_PREFIX}-{stage}-models-{account}"


def read_data(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TrainingInputError(
            f"training data {path} does not exist. Fix: pass --data FILE.csv; {SAMPLE_FIX}."
        ) from None
    except OSError as exc:
        raise TrainingInputError(
            f"training data {path} cannot be read ({exc.strerror}). Fix: pass --data FILE.csv."
        ) from None


def check_writable(out: Path) -> None:
    """Before training (minutes), not after: --out must take files."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise TrainingInputError(
            f"--out {out} is not writable ({exc.strerror}). Fix: pass --out a folder you can write to "
            f"(the default is build/model)."
        ) from None


def check_credentials(target: str) -> None:
    """Before training: an upload without credentials would fail only after minutes of work."""
    import boto3

    if boto3.Session().get_credentials() is None:
        raise TrainingInputError(
            f"no AWS credentials to upload to {target}. Fix: `aws configure`, `aws sso login` with AWS_PROFILE, "
            f"or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; or leave out --stage/--bucket to train locally only."
        )


def upload_or_explain(out: Path, manifest: dict[str, Any], stage: str | None, bucket: str | None, key: str) -> str:
    """Upload to the stage's (or the given) bucket; AWS's refusals become one line naming the bucket."""
    from botocore.exceptions import BotoCoreError, ClientError

    target = f"bucket {bucket}" if bucket else f"stage {stage}'s model bucket"
    try:
        if not bucket:
            import boto3

            account = boto3.client("sts").get_caller_identity()["Account"]
            bucket = model_bucket_name(str(stage), account)
            target = f"bucket {bucket}"
        upload(out, manifest, bucket, key)
    except (BotoCoreError, ClientError) as exc:
        raise TrainingInputError(
            f"uploading to {target} failed: {exc}. The model is written locally to {out}. Fix: check the "
            f"credentials, region and bucket (deploy the stage first: `inv deploy --stage {stage or '<stage>'}`)."
        ) from None
    return bucket


def upload(out: Path, manifest: dict[str, Any], bucket: str, manifest_key: str) -> None:
    import boto3

    s3 = boto3.client("s3")
    s3.upload_file(str(out / "model.joblib"), bucket, manifest["artifact_key"])
    # Last: the pointer readers follow.
    s3.put_object(
        Bucket=bucket, Key=manifest_key, Body=json.dumps(manifest, indent=2).encode(), ContentType="application/json"
    )
