"""CloudFormation-level gaps of moto 5.2.5, closed by `lambda_ml_layers.local_aws_fixes`.

Each gap test runs over HTTP with boto3 against two servers: stock `moto_server`, where it must
fail (strict xfail: the gap exists), and the patched server `moto_server()` (local/moto_server.py) starts by
default (the gap is closed). Templates are small and made here; nothing of the project is
patched. The last tests run the real `sam deploy` (SAM CLI venv .venv-sam) against the patched
server: what `inv deploy --stage local` relies on.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lambda_ml_layers import local_aws_fixes
from lambda_ml_layers.local.moto_server import LocalAWSError, MotoServer, start_moto_server

pytestmark = pytest.mark.emulator

ROOT = Path(__file__).resolve().parents[2]
SAM_CLI = ROOT / ".venv-sam" / "bin" / "sam"
SHA_A, SHA_B = "a" * 64, "b" * 64
NO_CHANGES = "The submitted information didn't contain changes."


@pytest.fixture
def aws(request: pytest.FixtureRequest) -> MotoServer:
    """The server a parametrized test runs on, emptied first."""
    server: MotoServer = request.getfixturevalue(f"{request.param}_server")
    server.reset()
    return server


def on_both_servers(gap: str) -> pytest.MarkDecorator:
    """Run the test on stock moto (must fail: `gap`) and on the patched server (must pass)."""
    return pytest.mark.parametrize(
        "aws",
        [
            pytest.param("stock", marks=pytest.mark.xfail(strict=True, reason=f"stock moto 5.2.5: {gap}")),
            pytest.param("patched"),
        ],
        indirect=True,
    )


# --- helpers --------------------------------------------------------------------------------


def change_set(
    aws: MotoServer, stack: str, template: str, kind: str = "UPDATE", **parameters: str | None
) -> dict[str, Any]:
    """Create a change set as `sam deploy` does (None: UsePreviousValue) and describe it."""
    cloudformation = aws.client("cloudformation")
    created = cloudformation.create_change_set(
        StackName=stack,
        ChangeSetName=f"c{uuid.uuid4().hex[:12]}",
        TemplateBody=template,
        ChangeSetType=kind,
        Capabilities=["CAPABILITY_IAM"],
        Parameters=[
            {"ParameterKey": key, "UsePreviousValue": True}
            if value is None
            else {"ParameterKey": key, "ParameterValue": value}
            for key, value in parameters.items()
        ],
    )
    described: dict[str, Any] = cloudformation.describe_change_set(ChangeSetName=created["Id"])
    return described


def deploy(
    aws: MotoServer, stack: str, template: str, kind: str = "UPDATE", **parameters: str | None
) -> dict[str, Any]:
    """Create and execute a change set; the stack as described afterwards."""
    created = change_set(aws, stack, template, kind, **parameters)
    assert created["Status"] == "CREATE_COMPLETE", created.get("StatusReason")
    cloudformation = aws.client("cloudformation")
    cloudformation.execute_change_set(ChangeSetName=created["ChangeSetId"])
    described: dict[str, Any] = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    return described


def outputs(stack: dict[str, Any]) -> dict[str, str]:
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs") or []}


def parameters(stack: dict[str, Any]) -> dict[str, str]:
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters") or []}


def actions(described_change_set: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (c["ResourceChange"]["Action"], c["ResourceChange"]["LogicalResourceId"])
        for c in described_change_set.get("Changes", [])
    }


def topic_names(aws: MotoServer) -> set[str]:
    return {t["TopicArn"].rsplit(":", 1)[1] for t in aws.client("sns").list_topics()["Topics"]}


# --- 1. SAM transform -------------------------------------------------------------------------

SAM_TABLE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Table:
    Type: AWS::Serverless::SimpleTable
    Properties:
      TableName: sam-table
Outputs:
  TableName:
    Value: !Ref Table
"""


@on_both_servers("the SAM transform never runs: a SAM template deploys as an empty stack")
def test_sam_template_is_transformed(aws: MotoServer) -> None:
    stack = deploy(aws, "sam", SAM_TABLE, kind="CREATE")
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert aws.client("dynamodb").list_tables()["TableNames"] == ["sam-table"]
    cloudformation = aws.client("cloudformation")
    resources = cloudformation.describe_stack_resources(StackName="sam")["StackResources"]
    assert [(r["LogicalResourceId"], r["ResourceType"]) for r in resources] == [("Table", "AWS::DynamoDB::Table")]
    # GetTemplate gives the template as submitted (TemplateStage Original), as on AWS.
    assert "AWS::Serverless::SimpleTable" in cloudformation.get_template(StackName="sam")["TemplateBody"]
    processed = cloudformation.get_template(StackName="sam", TemplateStage="Processed")["TemplateBody"]
    assert "AWS::DynamoDB::Table" in json.dumps(processed)


@on_both_servers("a SAM template the translator refuses still gives an executable change set")
def test_refused_sam_template_fails_the_change_set(aws: MotoServer) -> None:
    broken = SAM_TABLE.replace("TableName: sam-table", "TableName: sam-table\n      NoSuchProperty: 1")
    created = change_set(aws, "refused", broken, kind="CREATE")
    assert created["Status"] == "FAILED"
    assert created["ExecutionStatus"] == "UNAVAILABLE"
    assert created["StatusReason"].startswith(
        "Transform AWS::Serverless-2016-10-31 failed with: Invalid Serverless Application Specification document."
    )
    assert "[Table]" in created["StatusReason"]
    # The stack waits in REVIEW_IN_PROGRESS; a new CREATE change set reuses it, as on AWS.
    stack = deploy(aws, "refused", SAM_TABLE, kind="CREATE")
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    summaries = aws.client("cloudformation").list_stacks()["StackSummaries"]
    assert [s["StackName"] for s in summaries] == ["refused"]


# --- 2. outputs after a change set ------------------------------------------------------------

TOPIC = """
Parameters:
  Sha:
    Type: String
    Default: unset
    AllowedPattern: "^(unset|[0-9a-f]{64})$"
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !Sub "topic-${Sha}"
Outputs:
  TopicName:
    Value: !GetAtt Topic.TopicName
"""


@on_both_servers("execute_change_set leaves Outputs empty and never updates them")
def test_change_set_execution_rebuilds_outputs(aws: MotoServer) -> None:
    created = deploy(aws, "outputs", TOPIC, kind="CREATE")
    assert outputs(created) == {"TopicName": "topic-unset"}
    updated = deploy(aws, "outputs", TOPIC.replace("topic-", "renamed-"), Sha=None)
    assert updated["StackStatus"] == "UPDATE_COMPLETE"
    assert outputs(updated) == {"TopicName": "renamed-unset"}


# --- 3. parameter-only changes ---------------------------------------------------------------


@on_both_servers("a parameter-only change set lists no changes, a redeploy with UsePreviousValue is not 'no changes'")
def test_parameter_only_change_is_a_change(aws: MotoServer) -> None:
    deploy(aws, "params", TOPIC, kind="CREATE")  # Sha: its Default
    to_a = change_set(aws, "params", TOPIC, Sha=SHA_A)
    assert to_a["Status"] == "CREATE_COMPLETE"
    assert actions(to_a) == {("Modify", "Topic")}
    aws.client("cloudformation").execute_change_set(ChangeSetName=to_a["ChangeSetId"])
    assert topic_names(aws) == {f"topic-{SHA_A}"}
    assert parameters(deploy(aws, "params", TOPIC, Sha=SHA_B)) == {"Sha": SHA_B}
    back = deploy(aws, "params", TOPIC, Sha=SHA_A)  # back to an earlier value
    assert parameters(back) == {"Sha": SHA_A}
    assert outputs(back) == {"TopicName": f"topic-{SHA_A}"}
    # Nothing changed (the value comes from UsePreviousValue, as sam deploy sends it).
    same = change_set(aws, "params", TOPIC, Sha=None)
    assert same["Status"] == "FAILED"
    assert same["StatusReason"].startswith(NO_CHANGES)


@on_both_servers("parameter constraints (AllowedPattern, AllowedValues) are not checked")
def test_parameter_constraints_are_checked(aws: MotoServer) -> None:
    deploy(aws, "constraints", TOPIC, kind="CREATE")
    with pytest.raises(ClientError, match=re.escape("Parameter 'Sha' must match pattern ^(unset|[0-9a-f]{64})$")):
        change_set(aws, "constraints", TOPIC, Sha="not-a-sha256")


# --- 4. rollback ------------------------------------------------------------------------------

ROLLBACK_BEFORE = """
Parameters:
  Name:
    Type: String
    Default: one
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !Sub "rollback-${Name}"
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: kept-queue
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: rollback-bucket
Outputs:
  TopicName:
    Value: !GetAtt Topic.TopicName
"""
# Renames the topic (a parameter), drops the queue and moves the bucket to a name already taken.
ROLLBACK_AFTER = """
Parameters:
  Name:
    Type: String
    Default: one
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !Sub "rollback-${Name}"
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: taken-bucket
Outputs:
  TopicName:
    Value: !GetAtt Topic.TopicName
  Extra:
    Value: new-output
"""


def events(aws: MotoServer, stack: str) -> list[tuple[str, str, str]]:
    """(logical id, status, reason) oldest first."""
    described = aws.client("cloudformation").describe_stack_events(StackName=stack)["StackEvents"]
    return [(e["LogicalResourceId"], e["ResourceStatus"], e.get("ResourceStatusReason") or "") for e in described[::-1]]


@on_both_servers("a failed change set is never rolled back: HTTP 500, stack UPDATE_COMPLETE and half-applied")
def test_failed_update_rolls_back(aws: MotoServer) -> None:
    aws.client("s3").create_bucket(Bucket="taken-bucket")
    deploy(aws, "rollback", ROLLBACK_BEFORE, kind="CREATE")
    failing = change_set(aws, "rollback", ROLLBACK_AFTER, Name="two")
    cloudformation = aws.client("cloudformation")
    cloudformation.execute_change_set(ChangeSetName=failing["ChangeSetId"])  # succeeds, as on AWS

    stack = cloudformation.describe_stacks(StackName="rollback")["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert parameters(stack) == {"Name": "one"}
    assert outputs(stack) == {"TopicName": "rollback-one"}
    assert "kept-queue" in cloudformation.get_template(StackName="rollback")["TemplateBody"]
    assert cloudformation.describe_change_set(ChangeSetName=failing["ChangeSetId"])["ExecutionStatus"] == (
        "EXECUTE_FAILED"
    )
    # The resources are as before: topic renamed back, queue still there, bucket unmoved.
    assert topic_names(aws) == {"rollback-one"}
    assert [url.rsplit("/", 1)[1] for url in aws.client("sqs").list_queues()["QueueUrls"]] == ["kept-queue"]
    assert {b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]} == {"taken-bucket", "rollback-bucket"}

    update = events(aws, "rollback")
    update = update[max(i for i, e in enumerate(update) if e[1] == "UPDATE_IN_PROGRESS") :]
    assert [(e[0], e[1]) for e in update] == [
        ("rollback", "UPDATE_IN_PROGRESS"),
        ("Bucket", "UPDATE_FAILED"),
        ("rollback", "UPDATE_ROLLBACK_IN_PROGRESS"),
        ("rollback", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"),
        ("rollback", "UPDATE_ROLLBACK_COMPLETE"),
    ]
    assert "taken-bucket" in update[1][2] or "not available" in update[1][2]
    assert update[2][2] == "The following resource(s) failed to update: [Bucket]."

    # The stack can be updated again, and redeploying the release it rolled back to is no change.
    assert change_set(aws, "rollback", ROLLBACK_BEFORE, Name="one")["StatusReason"].startswith(NO_CHANGES)


@on_both_servers("a failed create leaves the stack half-made instead of ROLLBACK_COMPLETE")
def test_failed_create_rolls_back(aws: MotoServer) -> None:
    aws.client("s3").create_bucket(Bucket="taken-bucket")
    created = change_set(aws, "failed-create", ROLLBACK_AFTER, kind="CREATE")
    cloudformation = aws.client("cloudformation")
    cloudformation.execute_change_set(ChangeSetName=created["ChangeSetId"])
    assert cloudformation.describe_stacks(StackName="failed-create")["Stacks"][0]["StackStatus"] == "ROLLBACK_COMPLETE"
    assert topic_names(aws) == set()  # what the create made is deleted
    statuses = [(e[0], e[1]) for e in events(aws, "failed-create")]
    assert statuses[-3:] == [
        ("Bucket", "CREATE_FAILED"),
        ("failed-create", "ROLLBACK_IN_PROGRESS"),
        ("failed-create", "ROLLBACK_COMPLETE"),
    ]
    # Listing the stack's resources does not make them again (moto's resource map is lazy).
    assert cloudformation.describe_stack_resources(StackName="failed-create")["StackResources"] == []
    assert topic_names(aws) == set()
    # As on AWS, the stack keeps the submitted template and can only be deleted, not updated.
    summary = cloudformation.get_template_summary(StackName="failed-create")
    assert [p["ParameterKey"] for p in summary["Parameters"]] == ["Name"]
    with pytest.raises(ClientError, match="ROLLBACK_COMPLETE state and can not be updated"):
        change_set(aws, "failed-create", ROLLBACK_BEFORE)


# --- 5. no stale comparisons --------------------------------------------------------------------


@on_both_servers("redeploying an earlier release is reported as 'no changes' (stale stack parameters)")
def test_redeploying_an_earlier_release_is_a_change(aws: MotoServer) -> None:
    deploy(aws, "releases", TOPIC, kind="CREATE", Sha=SHA_A)
    deploy(aws, "releases", TOPIC, Sha=SHA_B)
    earlier = change_set(aws, "releases", TOPIC, Sha=SHA_A)
    assert earlier["Status"] == "CREATE_COMPLETE", earlier.get("StatusReason")
    aws.client("cloudformation").execute_change_set(ChangeSetName=earlier["ChangeSetId"])
    assert topic_names(aws) == {f"topic-{SHA_A}"}
    assert change_set(aws, "releases", TOPIC, Sha=SHA_A)["StatusReason"].startswith(NO_CHANGES)


# --- the package and its launcher -------------------------------------------------------------


def test_fixes_refuse_another_moto_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_aws_fixes, "installed_moto_version", lambda: "9.9.9")
    monkeypatch.setattr(local_aws_fixes, "_applied", False)
    with pytest.raises(LocalAWSError, match=r"written against moto 5\.2\.5, but moto 9\.9\.9 is installed"):
        local_aws_fixes.apply()


def test_missing_tooling_python_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MOTO_PYTHON", str(tmp_path / "nope"))
    with pytest.raises(LocalAWSError, match=r"MOTO_PYTHON .*Fix: set up the tooling venv"):
        start_moto_server()


def test_patched_server_stops_cleanly_on_sigterm() -> None:
    server = start_moto_server()
    server.process.terminate()
    assert server.process.wait(timeout=10) == 0
    server.stop()


# --- the real `sam deploy` --------------------------------------------------------------------

SAM_APP = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  LayersSha256:
    Type: String
    Default: unset
Resources:
  Layer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      LayerName: tiny-layer
      ContentUri: layer.zip
      CompatibleRuntimes: [python3.12]
      RetentionPolicy: Retain
  Function:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: tiny-function
      CodeUri: function.zip
      Handler: app.handler
      Runtime: python3.12
      AutoPublishAlias: live
      AutoPublishCodeSha256: !Ref LayersSha256
      Layers: [!Ref Layer]
Outputs:
  FunctionArn:
    Value: !GetAtt Function.Arn
"""


def tiny_zip(path: Path, name: str, text: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
        archive.writestr(info, text)
    path.write_bytes(buffer.getvalue())


def sam_deploy(server: MotoServer, folder: Path, stack: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        **server.client_env(),
        "SAM_CLI_TELEMETRY": "0",
        "SAM_CLI_POLL_DELAY": "0.2",
        "HOME": str(folder),  # no user samconfig or credentials files
    }
    command = [
        str(SAM_CLI),
        "deploy",
        "--template-file",
        str(folder / "template.yaml"),
        "--stack-name",
        stack,
        "--resolve-s3",
        "--capabilities",
        "CAPABILITY_IAM",
        "--no-confirm-changeset",
        "--no-fail-on-empty-changeset",
        "--region",
        "us-east-1",
        *extra,
    ]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.skipif(not SAM_CLI.exists(), reason=f"SAM CLI not installed at {SAM_CLI} (the .venv-sam venv)")
def test_sam_deploy_twice(patched_server: MotoServer, tmp_path: Path) -> None:
    patched_server.reset()
    (tmp_path / "template.yaml").write_text(SAM_APP)
    tiny_zip(tmp_path / "layer.zip", "python/tiny_layer.py", "VALUE = 1\n")
    tiny_zip(tmp_path / "function.zip", "app.py", "def handler(event, context):\n    return 1\n")

    first = sam_deploy(patched_server, tmp_path, "t")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Successfully created/updated stack - t" in first.stdout + first.stderr
    stack = patched_server.client("cloudformation").describe_stacks(StackName="t")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert outputs(stack)["FunctionArn"].endswith(":function:tiny-function")

    second = sam_deploy(patched_server, tmp_path, "t")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "No changes to deploy" in second.stdout + second.stderr

    changed = sam_deploy(patched_server, tmp_path, "t", "--parameter-overrides", f"LayersSha256={SHA_A}")
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert re.search(r"UPDATE_COMPLETE\s", changed.stdout + changed.stderr)
    stack = patched_server.client("cloudformation").describe_stacks(StackName="t")["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert parameters(stack)["LayersSha256"] == SHA_A
    # AutoPublishAlias: the new version is published after the function is updated.
    functions = patched_server.client("lambda")
    live = functions.get_alias(FunctionName="tiny-function", Name="live")["FunctionVersion"]
    assert live == "2"
    assert functions.get_function_configuration(FunctionName="tiny-function", Qualifier=live)["Description"].endswith(
        SHA_A
    )

    # A release that fails rolls back; sam deploy reports it; the release before is "no changes".
    patched_server.client("s3").create_bucket(Bucket="taken-bucket")
    good = (tmp_path / "template.yaml").read_text()
    bad = good.replace(
        "Outputs:", "  Taken:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: taken-bucket\nOutputs:"
    )
    (tmp_path / "template.yaml").write_text(bad)
    failed = sam_deploy(patched_server, tmp_path, "t", "--parameter-overrides", f"LayersSha256={SHA_B}")
    assert failed.returncode != 0
    assert "UPDATE_ROLLBACK_COMPLETE" in failed.stdout + failed.stderr
    stack = patched_server.client("cloudformation").describe_stacks(StackName="t")["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert parameters(stack)["LayersSha256"] == SHA_A
    assert functions.get_alias(FunctionName="tiny-function", Name="live")["FunctionVersion"] == live
    (tmp_path / "template.yaml").write_text(good)
    again = sam_deploy(patched_server, tmp_path, "t", "--parameter-overrides", f"LayersSha256={SHA_A}")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes to deploy" in again.stdout + again.stderr
    shutil.rmtree(tmp_path / ".aws-sam", ignore_errors=True)
