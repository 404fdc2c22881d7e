"""Step Functions on the local emulator: moto 5.2.5's own interpreter, Lambda tasks in the sandbox.

Each gap test runs over HTTP with boto3 on stock `moto_server` with the interpreter switched on
through /moto-api/config (strict xfail: the gap exists) and on the patched server (closed); see
lambda_ml_layers/local_aws_fixes/step_functions.py and lambda_sandboxes.py (patches 12-16). The
functions are tiny handlers in a zip, run by the python3.12 sandbox: no layers needed.
"""

from __future__ import annotations

import io
import json
import time
import urllib.request
import uuid
import zipfile
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambda_ml_layers.local.moto_server import MotoServer, start_moto_server

pytestmark = pytest.mark.emulator

HANDLER = """
import json, time

def handler(event, context):
    print("event", json.dumps(event))
    action = event.get("action") if isinstance(event, dict) else None
    if action == "fail":
        raise ValueError("boom: " + str(event.get("n")))
    if action == "sleep":
        time.sleep(event["seconds"])
    if action == "slow":
        time.sleep(0.3)
    return {"n": event.get("n"), "doubled": (event.get("n") or 0) * 2}
"""


@pytest.fixture
def aws(request: pytest.FixtureRequest) -> MotoServer:
    server: MotoServer = request.getfixturevalue(f"{request.param}_server")
    server.reset()
    return configured(server, request.param == "stock")


def configured(server: MotoServer, stock: bool) -> MotoServer:
    """A stock server gets the interpreter switched on (and Lambda's Docker-less canned answers)."""
    if stock:
        set_config(server, {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})
    return server


def set_config(server: MotoServer, config: dict[str, Any]) -> None:
    """moto's own runtime configuration, through its API (/moto-api/config)."""
    url = f"{server.endpoint_url}/moto-api/config"
    post = urllib.request.Request(url, data=json.dumps(config).encode(), method="POST")
    with urllib.request.urlopen(post, timeout=10):
        pass


def on_both_servers(gap: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize(
        "aws",
        [
            pytest.param("stock", marks=pytest.mark.xfail(strict=True, reason=f"stock moto 5.2.5: {gap}")),
            pytest.param("patched"),
        ],
        indirect=True,
    )


patched_only = pytest.mark.parametrize("aws", ["patched"], indirect=True)


def role(aws: MotoServer) -> str:
    name = f"r{uuid.uuid4().hex[:8]}"
    arn: str = aws.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    return arn


def function(aws: MotoServer, timeout: int = 3) -> str:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("work.py", HANDLER)
    arn: str = aws.client("lambda").create_function(
        FunctionName=f"work-{uuid.uuid4().hex[:8]}",
        Runtime="python3.12",
        Role=role(aws),
        Handler="work.handler",
        MemorySize=512,
        Timeout=timeout,
        Code={"ZipFile": archive.getvalue()},
    )["FunctionArn"]
    return arn


def task(function_arn: str, **extra: Any) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": function_arn, "Payload.$": "$"},
        "ResultSelector": {"result.$": "$.Payload"},
        "OutputPath": "$.result",
        **extra,
    }


def run(aws: MotoServer, definition: dict[str, Any], execution_input: Any, limit: float = 60) -> dict[str, Any]:
    """Create the machine, start it, wait for the end (at most `limit` seconds); the description."""
    sfn = aws.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"m{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=role(aws)
    )["stateMachineArn"]
    return finish(aws, sfn.start_execution(stateMachineArn=machine, input=json.dumps(execution_input)), limit)


def finish(aws: MotoServer, started: dict[str, Any], limit: float) -> dict[str, Any]:
    sfn = aws.client("stepfunctions")
    deadline = time.monotonic() + limit
    while (described := sfn.describe_execution(executionArn=started["executionArn"]))["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"still RUNNING after {limit} s"
        time.sleep(0.05)
    return dict(described)


def history(aws: MotoServer, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = aws.client("stepfunctions").get_execution_history(executionArn=execution_arn)[
        "events"
    ]
    return events


# --- the gaps ---------------------------------------------------------------------------------

STACK_MACHINE = {
    "Resources": {
        "Machine": {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "RoleArn": "arn:aws:iam::123456789012:role/r",
                "DefinitionString": json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
            },
        }
    },
    "Outputs": {"Arn": {"Value": {"Ref": "Machine"}}},
}


@on_both_servers("a stack's state machine lands in stepfunctions_backends; StartExecution reads the parser's")
def test_a_stacks_state_machine_can_be_started(aws: MotoServer) -> None:
    cloudformation = aws.client("cloudformation")
    cloudformation.create_stack(StackName="s", TemplateBody=json.dumps(STACK_MACHINE))
    arn = cloudformation.describe_stack_resource(StackName="s", LogicalResourceId="Machine")["StackResourceDetail"][
        "PhysicalResourceId"
    ]
    started = aws.client("stepfunctions").start_execution(stateMachineArn=arn, input='{"a": 1}')
    assert json.loads(finish(aws, started, 10)["output"]) == {"a": 1}


@on_both_servers("a Retry's wait is a real sleep (2 s, then 4 s here)")
def test_retry_waits_are_scaled_down_keeping_every_attempt(aws: MotoServer, request: pytest.FixtureRequest) -> None:
    retry = [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "MaxAttempts": 2, "BackoffRate": 2}]
    definition = {"StartAt": "T", "States": {"T": task(function(aws), Retry=retry, End=True)}}
    # Stock's Docker-less Lambda answers every invoke with a canned success: with Docker asked
    # for (absent here) each attempt fails there too, so both servers retry the same way.
    stock = request.node.callspec.params["aws"] == "stock"
    if stock:
        set_config(aws, {"lambda": {"use_docker": True}})
    try:
        described = run(aws, definition, {"action": "fail", "n": 1}, limit=60)
    finally:
        if stock:
            set_config(aws, {"lambda": {"use_docker": False}})
    events = history(aws, described["executionArn"])
    assert [e["type"] for e in events].count("TaskScheduled") == 3  # the first try and two retries
    assert described["status"] == "FAILED"
    # The waits themselves: from each failure to the next attempt (2 s and 4 s on AWS).
    failed = [e["timestamp"] for e in events if e["type"] == "TaskFailed"]
    scheduled = [e["timestamp"] for e in events if e["type"] == "TaskScheduled"]
    waits = [(again - fail).total_seconds() for fail, again in zip(failed, scheduled[1:], strict=False)]
    assert len(waits) == 2 and max(waits) < 1, waits


@pytest.mark.parametrize(
    "stock",
    [
        pytest.param(
            True, marks=pytest.mark.xfail(strict=True, reason="stock moto 5.2.5 keeps an inherited MOTO_PORT")
        ),
        False,
    ],
)
def test_a_lambda_task_reaches_this_server_whatever_moto_port_says(
    stock: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # moto_server sets MOTO_PORT to its port only when the variable is unset; a value inherited
    # from the caller's environment (5000 here, moto's default) sends every Lambda task elsewhere.
    monkeypatch.setenv("MOTO_PORT", "5000")
    server = start_moto_server(stock=stock)
    try:
        aws = configured(server, stock)
        definition = {"StartAt": "T", "States": {"T": task(function(aws), End=True)}}
        described = run(aws, definition, {"n": 2}, limit=30)
        assert described["status"] == "SUCCEEDED", described.get("cause")
    finally:
        server.stop()


@on_both_servers("StartExecution without a name names the execution 'None' (a second is ExecutionAlreadyExists)")
def test_unnamed_executions_each_get_a_new_name(aws: MotoServer) -> None:
    sfn = aws.client("stepfunctions")
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    machine = sfn.create_state_machine(name="m", definition=json.dumps(definition), roleArn=role(aws))
    first = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input='{"a": 1}')
    second = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input='{"a": 2}')
    assert first["executionArn"] != second["executionArn"]
    assert not first["executionArn"].endswith(":None")


@on_both_servers("Invoke needs Docker: no user code runs (use_docker=False echoes a canned answer)")
def test_invoke_runs_the_deployed_code_and_logs_its_report_line(aws: MotoServer) -> None:
    arn = function(aws)
    response = aws.client("lambda").invoke(FunctionName=arn, Payload=json.dumps({"n": 21}).encode())
    assert json.loads(response["Payload"].read()) == {"n": 21, "doubled": 42}
    failed = aws.client("lambda").invoke(FunctionName=arn, Payload=json.dumps({"action": "fail", "n": 3}).encode())
    assert failed.get("FunctionError")
    assert json.loads(failed["Payload"].read())["errorType"] == "ValueError"
    logs = aws.client("logs")
    group = f"/aws/lambda/{arn.rsplit(':', 1)[-1]}"
    lines = [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]]
    reports = [line for line in lines if line.startswith("REPORT RequestId: ")]
    assert len(reports) == 2 and "Max Memory Used: " in reports[0] and "Init Duration: " in reports[0]
    assert any(line.startswith('event {"n": 21}') for line in lines)


# --- the interpreter on the patched server: what the template's state machine uses -------------


@patched_only
def test_tasks_choice_and_fail_run_in_order_with_aws_history(aws: MotoServer) -> None:
    work = function(aws)
    definition = {
        "StartAt": "Double",
        "States": {
            "Double": task(work, Next="Big?"),
            "Big?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.doubled", "NumericGreaterThan": 10, "Next": "Done"}],
                "Default": "TooSmall",
            },
            "Done": {"Type": "Succeed"},
            "TooSmall": {"Type": "Fail", "Error": "Batch.TooSmall", "Cause": "doubled is at most 10"},
        },
    }
    succeeded = run(aws, definition, {"n": 6})
    assert succeeded["status"] == "SUCCEEDED" and json.loads(succeeded["output"]) == {"n": 6, "doubled": 12}
    kinds = [e["type"] for e in history(aws, succeeded["executionArn"])]
    assert kinds == [
        "ExecutionStarted",
        "TaskStateEntered",
        "TaskScheduled",
        "TaskStarted",
        "TaskSucceeded",
        "TaskStateExited",
        "ChoiceStateEntered",
        "ChoiceStateExited",
        "SucceedStateEntered",
        "SucceedStateExited",
        "ExecutionSucceeded",
    ]
    failed = run(aws, definition, {"n": 1})
    assert (failed["status"], failed["error"], failed["cause"]) == ("FAILED", "Batch.TooSmall", "doubled is at most 10")


@patched_only
def test_a_map_with_max_concurrency_keeps_item_order_and_catch_takes_a_failure(aws: MotoServer) -> None:
    work = function(aws)
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 2,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Work",
                    "States": {"Work": task(work, End=True)},
                },
                "Catch": [{"ErrorEquals": ["ValueError"], "ResultPath": "$.error", "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    items = [{"n": n, "action": "slow"} for n in range(4)]
    described = run(aws, definition, {"items": items})
    assert [r["doubled"] for r in json.loads(described["output"])] == [0, 2, 4, 6]
    caught = run(aws, definition, {"items": [{"n": 1}, {"n": 2, "action": "fail"}]})
    output = json.loads(caught["output"])
    assert caught["status"] == "SUCCEEDED" and output["error"]["Error"] == "ValueError"
    assert "boom: 2" in json.loads(output["error"]["Cause"])["errorMessage"]


@patched_only
def test_a_function_that_times_out_fails_the_task_as_lambda_reports_it(aws: MotoServer) -> None:
    definition = {"StartAt": "T", "States": {"T": task(function(aws, timeout=1), End=True)}}
    described = run(aws, definition, {"action": "sleep", "seconds": 5})
    assert described["status"] == "FAILED" and described["error"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in described["cause"]


@patched_only
def test_a_definition_moto_cannot_parse_is_refused_at_create(aws: MotoServer) -> None:
    with pytest.raises(ClientError, match="ASLParserException"):
        aws.client("stepfunctions").create_state_machine(
            name="bad", definition=json.dumps({"StartAt": "X", "States": {}}), roleArn=role(aws)
        )


# --- an upload starts the pipeline: S3 -> EventBridge -> Step Functions (patches 17-18) ---------


def wait_for(check: Any, seconds: float = 10) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := check()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


UPLOADS = {"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": {"object": {"key": [{"prefix": "in/"}]}}}


@on_both_servers("a stack bucket's NotificationConfiguration and VersioningConfiguration are ignored")
def test_a_stack_buckets_uploads_reach_eventbridge_with_their_version(aws: MotoServer) -> None:
    queue = aws.client("sqs").create_queue(QueueName=f"q{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = aws.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = aws.client("events")
    events.put_rule(Name="uploads", EventPattern=json.dumps(UPLOADS))
    events.put_targets(Rule="uploads", Targets=[{"Id": "q", "Arn": queue_arn}])
    bucket = f"b{uuid.uuid4().hex[:8]}"
    notified = {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    properties = {
        "BucketName": bucket,
        "NotificationConfiguration": notified,
        "VersioningConfiguration": {"Status": "Enabled"},
    }
    template = {"Resources": {"B": {"Type": "AWS::S3::Bucket", "Properties": properties}}}
    aws.client("cloudformation").create_stack(StackName="b", TemplateBody=json.dumps(template))
    version = aws.client("s3").put_object(Bucket=bucket, Key="in/a.csv", Body=b"x").get("VersionId")
    assert version
    received = wait_for(lambda: aws.client("sqs").receive_message(QueueUrl=queue).get("Messages"))
    assert received
    detail = json.loads(received[0]["Body"])["detail"]["object"]
    assert (detail["key"], detail["version-id"]) == ("in/a.csv", version)


@on_both_servers("a rule's Step Functions target is not delivered (NotImplementedError, swallowed)")
def test_a_rules_state_machine_target_starts_an_execution_with_the_event(aws: MotoServer) -> None:
    sfn = aws.client("stepfunctions")
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    machine = sfn.create_state_machine(name="m", definition=json.dumps(definition), roleArn=role(aws))
    events = aws.client("events")
    events.put_rule(Name="uploads", EventPattern=json.dumps(UPLOADS))
    events.put_targets(Rule="uploads", Targets=[{"Id": "m", "Arn": machine["stateMachineArn"], "RoleArn": role(aws)}])
    bucket = f"b{uuid.uuid4().hex[:8]}"
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    s3.put_object(Bucket=bucket, Key="in/a.csv", Body=b"x")
    s3.put_object(Bucket=bucket, Key="elsewhere/b.csv", Body=b"x")  # the pattern leaves it out
    started = wait_for(lambda: sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"])
    assert len(started) == 1
    described = sfn.describe_execution(executionArn=started[0]["executionArn"])
    event = json.loads(described["input"])
    assert (event["detail-type"], event["detail"]["object"]["key"]) == ("Object Created", "in/a.csv")
    events.disable_rule(Name="uploads")  # as on AWS, a disabled rule starts nothing
    s3.put_object(Bucket=bucket, Key="in/c.csv", Body=b"x")
    time.sleep(1)
    assert len(sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]) == 1
