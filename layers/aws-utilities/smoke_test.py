"""Smoke test of aws-utilities, run by `nox -s layer_tests`: a client for every kept service,
and a clear UnknownServiceError for one that was trimmed away (the layer's contract)."""

import json
import sys

import boto3
from botocore.exceptions import UnknownServiceError

context = json.loads(sys.argv[1])
session = boto3.session.Session(region_name="us-east-1")
kept = context["kept_aws_services"]
for service in kept:
    session.client(service)
assert "s3" in kept
session.resource("s3").Bucket("example")  # boto3's resource model for a kept service
try:
    session.client("ec2")
except UnknownServiceError as error:
    assert "ec2" in str(error)
else:
    raise AssertionError("ec2 was trimmed from the layer, yet a client was created")
print(f"aws-utilities smoke test passed: {len(kept)} services")
