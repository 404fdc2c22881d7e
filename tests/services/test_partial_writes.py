"""A handler that wrote part of its output and then failed leaves nothing that looks like success.

The failure is a real refusal by the S3 API, not a patched call: moto server enforces IAM
when asked to (its /moto-api/reset-auth endpoint, the switch moto's own
`set_initial_no_auth_action_count` uses in server mode). Predictions then runs with the
credentials of a user whose policy is the template's least-privilege policy for it, minus
s3:PutObject on the summary: predictions.csv is written, summary.json is refused, and the
handler must delete predictions.csv again (Outputs.discard) before the error propagates.
The data bucket is versioned, so the test can see that predictions.csv really was written
and then deleted, not simply never written.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from data_validation import handler as validation
from feature_engineering import handler as feature_engineering
from predictions import handler as predictions
from predictions import runtime as predictions_runtime
from svc_helpers import batch_csv, errors_logged, keys, put

BATCH = "2024-04-20/partial"


def _set_auth(endpoint: str, free_requests: float) -> None:
    """moto server: authenticate and authorize every request after `free_requests` (inf: never)."""
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=str(free_requests).encode(),
        headers={"Content-Type": "text/plain"},  # not a form: moto reads the raw body
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


@contextmanager
def iam_enforced(endpoint: str) -> Iterator[None]:
    _set_auth(endpoint, 0)
    try:
        yield
    finally:
        _set_auth(endpoint, float("inf"))


def predictions_role(endpoint: str, data_bucket: str, model_bucket: str) -> dict[str, str]:
    """An IAM user with Predictions' template policy, except PutObject on the summary marker."""
    iam = boto3.client("iam", endpoint_url=endpoint)
    user = f"predictions-{data_bucket}"
    iam.create_user(UserName=user)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{data_bucket}/features/*"},
            # To check the run is still the latest upload of the batch (batch_runs.require_latest).
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{data_bucket}/incoming/*"},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{model_bucket}/models/*"},
            {
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{data_bucket}/predictions/*/predictions.csv",
            },
            {"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": f"arn:aws:s3:::{data_bucket}/predictions/*"},
        ],
    }
    iam.put_user_policy(UserName=user, PolicyName="predictions", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


def test_predictions_removes_its_data_when_the_summary_write_is_refused(
    s3: Any,
    moto_endpoint: str,
    data_bucket: str,
    model_bucket: str,
    uploaded_model: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s3.put_bucket_versioning(Bucket=data_bucket, VersioningConfiguration={"Status": "Enabled"})
    put(s3, data_bucket, f"incoming/{BATCH}.csv", batch_csv(drop_label=True))
    validated = validation.lambda_handler({"bucket": data_bucket, "key": f"incoming/{BATCH}.csv"}, None)
    built = feature_engineering.lambda_handler(validated, None)
    assert built["status"] == "ok"
    role = predictions_role(moto_endpoint, data_bucket, model_bucket)

    # A new Predictions container running with that role: its own credentials, and no boto3
    # session or client made before (botocore keeps the credentials it first resolved).
    for name, value in role.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    predictions_runtime.s3_client.cache_clear()
    capsys.readouterr()
    try:
        with iam_enforced(moto_endpoint), pytest.raises(ClientError) as refused:
            predictions.lambda_handler(built, None)
    finally:
        predictions_runtime.s3_client.cache_clear()  # the next test's container uses its own credentials

    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert refused.value.operation_name == "PutObject"
    errors = errors_logged(capsys.readouterr().out)
    assert len(errors) == 1 and errors[0]["error_type"] == "Unexpected"
    # Nothing under predictions/ is visible: no summary, and no predictions.csv without one.
    left = sorted(k for k in keys(s3, data_bucket) if k.startswith("predictions/"))
    assert left == [], f"a failed invocation left {left} looking like a result"
    history = s3.list_object_versions(Bucket=data_bucket, Prefix="predictions/")
    written = [v["Key"] for v in history.get("Versions", [])]
    deleted = [m["Key"] for m in history.get("DeleteMarkers", []) if m["IsLatest"]]
    assert written == [f"predictions/{BATCH}/predictions.csv"]  # the first write really happened
    assert deleted == written  # ... and was removed again
