"""Smoke test of aws-utilities, run by `nox -s layer_tests`: a client for every kept service,
a clear UnknownServiceError for one that was trimmed away (the layer's contract), and
Powertools' Logger and Metrics working as services/shared/runtime.py uses them."""

import io
import json
import sys

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics
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

stream = io.StringIO()
Logger(service="smoke", stream=stream).info("logged", rows=3)
line = json.loads(stream.getvalue())
assert (line["level"], line["message"], line["service"], line["rows"]) == ("INFO", "logged", "smoke", 3), line
metric = EphemeralMetrics(namespace="Smoke")
metric.add_metric(name="FailedBatches", unit="Count", value=1)
metric.add_dimension(name="function_name", value="Smoke")
emf = metric.serialize_metric_set()
assert emf["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["function_name"]], emf
assert emf["FailedBatches"] == [1.0], emf
print(f"aws-utilities smoke test passed: {len(kept)} services, Powertools Logger and Metrics")
