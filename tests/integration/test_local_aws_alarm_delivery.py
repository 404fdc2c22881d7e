"""moto 5.2.5 gaps 10 and 11 (`local_aws_fixes/alarm_delivery.py`): an SNS subscription and a
log metric filter made by a stack. Each test runs on stock moto, where it must fail (strict
xfail: the gap exists), and on the patched server `moto_server()` (local/moto_server.py) starts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambda_ml_layers.local.moto_server import MotoServer

pytestmark = pytest.mark.emulator

STACK = "alarm-delivery"
PATTERN = '[report="REPORT", ..., label="Init", label2="Duration:", value, unit="ms"]'


@pytest.fixture
def aws(request: pytest.FixtureRequest) -> MotoServer:
    server: MotoServer = request.getfixturevalue(f"{request.param}_server")
    server.reset()
    return server


def on_both(gap: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize(
        "aws",
        [
            pytest.param("stock", marks=pytest.mark.xfail(strict=True, reason=f"stock moto 5.2.5: {gap}")),
            pytest.param("patched"),
        ],
        indirect=True,
    )


def deploy(aws: MotoServer, resources: dict[str, Any], update: bool = False) -> None:
    cfn = aws.client("cloudformation")
    body = json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources})
    (cfn.update_stack if update else cfn.create_stack)(StackName=STACK, TemplateBody=body)
    status = cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"]
    assert status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"), status


def topic_and_subscription(endpoint: str, protocol: str) -> dict[str, Any]:
    return {
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "alarms"}},
        "Subscription": {
            "Type": "AWS::SNS::Subscription",
            "Properties": {"TopicArn": {"Ref": "Topic"}, "Protocol": protocol, "Endpoint": endpoint},
        },
    }


def subscribers(aws: MotoServer) -> list[tuple[str, str]]:
    sns = aws.client("sns")
    topic = sns.list_topics()["Topics"][0]["TopicArn"]
    return [(s["Protocol"], s["Endpoint"]) for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]]


@on_both("AWS::SNS::Subscription is skipped: the alarm topic has no subscriber")
def test_subscription_is_made_replaced_and_removed(aws: MotoServer) -> None:
    deploy(aws, topic_and_subscription("ops@example.com", "email"))
    assert subscribers(aws) == [("email", "ops@example.com")]
    deploy(aws, topic_and_subscription("https://alerts.example.com/hook", "https"), update=True)
    assert subscribers(aws) == [("https", "https://alerts.example.com/hook")]
    deploy(aws, {"Topic": topic_and_subscription("x@example.com", "email")["Topic"]}, update=True)
    assert subscribers(aws) == []


def metric_filter(namespace: str) -> dict[str, Any]:
    return {
        "Group": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/aws/lambda/f"}},
        "InitDuration": {
            "Type": "AWS::Logs::MetricFilter",
            "Properties": {
                "LogGroupName": {"Ref": "Group"},
                "FilterPattern": PATTERN,
                "MetricTransformations": [
                    {"MetricNamespace": namespace, "MetricName": "f", "MetricValue": "$value", "Unit": "Milliseconds"}
                ],
            },
        },
    }


@on_both("AWS::Logs::MetricFilter is skipped: DescribeMetricFilters is empty")
def test_metric_filter_is_made_updated_and_removed(aws: MotoServer) -> None:
    logs = aws.client("logs")
    deploy(aws, metric_filter("First"))
    found = logs.describe_metric_filters(logGroupName="/aws/lambda/f")["metricFilters"]
    assert [(f["filterPattern"], f["metricTransformations"][0]["metricNamespace"]) for f in found] == [
        (PATTERN, "First")
    ]
    deploy(aws, metric_filter("Second"), update=True)
    found = logs.describe_metric_filters(logGroupName="/aws/lambda/f")["metricFilters"]
    assert [f["metricTransformations"][0]["metricNamespace"] for f in found] == ["Second"]
    deploy(aws, {"Group": metric_filter("x")["Group"]}, update=True)
    assert logs.describe_metric_filters(logGroupName="/aws/lambda/f")["metricFilters"] == []
