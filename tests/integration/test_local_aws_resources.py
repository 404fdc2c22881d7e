"""Resource-model gaps of moto 5.2.5's CloudFormation, closed by `local_aws_fixes.resources`.

Each test runs over HTTP with boto3 against three servers: stock moto_server, where it must
fail (strict xfail: the gap exists); moto patched by `resources.apply()` only (the gap is
closed by that module alone); and the project's local AWS, `moto_server()` (local/moto_server.py) (every
fix, CloudFormation's own order and rollback included). Templates are plain CloudFormation
(what the SAM translator makes of infra/template.yaml), so the SAM transform is not needed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from lambda_ml_layers.local.moto_server import MotoServer, moto_server, start_moto_server

pytestmark = pytest.mark.emulator

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "artifacts"
STACK = "resources"

# A moto_server-like program: moto's own server entry point, after this module's patches only.
PATCHED_LAUNCHER = f"""#!{sys.executable}
import sys
sys.path.insert(0, {str(ROOT)!r})
from lambda_ml_layers.local_aws_fixes import resources
resources.apply()
from moto.server import main
main(sys.argv[1:])
"""


@pytest.fixture(scope="module")
def patched_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    launcher = tmp_path_factory.mktemp("patched") / "moto_server_resources"
    launcher.write_text(PATCHED_LAUNCHER)
    launcher.chmod(0o755)
    server = start_moto_server(launcher)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def full_server() -> Iterator[MotoServer]:
    with moto_server() as server:
        yield server


def on_servers(gap: str) -> pytest.MarkDecorator:
    """Run the test on stock moto (must fail: `gap`) and on both patched servers (must pass)."""
    return pytest.mark.parametrize(
        "aws",
        [
            pytest.param("stock", marks=pytest.mark.xfail(strict=True, reason=f"stock moto 5.2.5: {gap}")),
            pytest.param("patched"),
            pytest.param("full"),
        ],
        indirect=True,
    )


@dataclass
class AWS:
    """Clients of one freshly reset server, and the stack operations the tests use."""

    server: MotoServer
    kind: str

    def __post_init__(self) -> None:
        self.s3 = self.server.client("s3")
        self.cfn = self.server.client("cloudformation")
        self.lam = self.server.client("lambda")
        self.sfn = self.server.client("stepfunctions")
        self.events = self.server.client("events")
        self.cloudwatch = self.server.client("cloudwatch")
        self.logs = self.server.client("logs")
        self.s3.create_bucket(Bucket=BUCKET)

    def upload_zip(self, key: str, files: dict[str, str]) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, text in sorted(files.items()):
                archive.writestr(name, text)
        data = buffer.getvalue()
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=data)
        return data

    def upload_zeros(self, key: str, unzipped_bytes: int) -> None:
        """A zip holding one file of `unzipped_bytes` zero bytes (it compresses to almost nothing)."""
        buffer = io.BytesIO()
        chunk = bytes(1 << 20)
        with (
            zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
            archive.open("python/zeros.bin", "w", force_zip64=True) as member,
        ):
            for start in range(0, unzipped_bytes, len(chunk)):
                member.write(chunk[: min(len(chunk), unzipped_bytes - start)])
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=buffer.getvalue())

    def create(self, resources: dict[str, Any], outputs: dict[str, Any] | None = None, *, check: bool = True) -> None:
        self.cfn.create_stack(
            StackName=STACK, TemplateBody=template(resources, outputs), Capabilities=["CAPABILITY_IAM"]
        )
        if check:
            assert self.status() == "CREATE_COMPLETE", self.failed_reasons()

    def update(self, resources: dict[str, Any], outputs: dict[str, Any] | None = None, *, check: bool = True) -> None:
        self.cfn.update_stack(
            StackName=STACK, TemplateBody=template(resources, outputs), Capabilities=["CAPABILITY_IAM"]
        )
        if check:
            assert self.status() == "UPDATE_COMPLETE", self.failed_reasons()

    def status(self) -> str:
        return str(self.cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"])

    def physical_ids(self) -> dict[str, str]:
        summaries = self.cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
        return {s["LogicalResourceId"]: s.get("PhysicalResourceId", "") for s in summaries}

    def outputs(self) -> dict[str, str]:
        stack = self.cfn.describe_stacks(StackName=STACK)["Stacks"][0]
        return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    def failure(self, operation: Callable[[], object]) -> str:
        """The error a failing stack operation reports: the API error, or (with CloudFormation's
        own rollback in place) the failed resource's ResourceStatusReason. (Stock moto answers a
        resource's error with its JSON body inside the XML API: botocore cannot parse it.)"""
        try:
            operation()
        except (ClientError, ResponseParserError) as error:
            return str(error)
        reasons = self.failed_reasons()
        assert reasons, f"the operation did not fail; stack is {self.status()}"
        return reasons

    def failed_reasons(self) -> str:
        events = self.cfn.describe_stack_events(StackName=STACK)["StackEvents"]
        return " | ".join(e.get("ResourceStatusReason", "") for e in events if e["ResourceStatus"].endswith("_FAILED"))

    def assert_error_code(self, reason: str, code: str) -> None:
        """The API error names its code; CloudFormation's event (full server) only its message."""
        if self.kind != "full":
            assert code in reason


@pytest.fixture
def aws(request: pytest.FixtureRequest) -> AWS:
    server: MotoServer = request.getfixturevalue(f"{request.param}_server")
    server.reset()
    return AWS(server, request.param)


def template(resources: dict[str, Any], outputs: dict[str, Any] | None = None) -> str:
    body: dict[str, Any] = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {"Role": ROLE, **resources}}
    if outputs:
        body["Outputs"] = {key: {"Value": value} for key, value in outputs.items()}
    return json.dumps(body)


def code_sha256(data: bytes) -> str:
    """CodeSha256 as Lambda reports it: base64 of the sha256 digest."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def layer_arn(name: str, version: int) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{name}:{version}"


def function_arn(name: str, qualifier: str | int | None = None) -> str:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier is not None else arn


ROLE: dict[str, Any] = {
    "Type": "AWS::IAM::Role",
    "Properties": {
        "AssumeRolePolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                    "Action": ["sts:AssumeRole"],
                }
            ],
        }
    },
}


def layer(name: str, key: str, *, retain: bool = False, description: str = "a layer") -> dict[str, Any]:
    resource: dict[str, Any] = {
        "Type": "AWS::Lambda::LayerVersion",
        "Properties": {
            "LayerName": name,
            "Description": description,
            "Content": {"S3Bucket": BUCKET, "S3Key": key},
            "CompatibleRuntimes": ["python3.12"],
            "CompatibleArchitectures": ["x86_64"],
            "LicenseInfo": "MIT",
        },
    }
    if retain:
        resource["DeletionPolicy"] = "Retain"
    return resource


def function(name: str, key: str, layers: list[Any], **extra: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "FunctionName": name,
            "Code": {"S3Bucket": BUCKET, "S3Key": key},
            "Handler": "app.handler",
            "Runtime": "python3.12",
            "Role": {"Fn::GetAtt": ["Role", "Arn"]},
            "Layers": layers,
            **extra,
        },
    }


def version(function_logical_id: str) -> dict[str, Any]:
    """What SAM's AutoPublishAlias makes: a retained version of the function as it is now."""
    return {
        "Type": "AWS::Lambda::Version",
        "DeletionPolicy": "Retain",
        "Properties": {"FunctionName": {"Ref": function_logical_id}},
    }


def alias(function_logical_id: str, version_logical_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::Lambda::Alias",
        "Properties": {
            "Name": "live",
            "FunctionName": {"Ref": function_logical_id},
            "FunctionVersion": {"Fn::GetAtt": [version_logical_id, "Version"]},
            **extra,
        },
    }


def layer_arns(configuration: dict[str, Any]) -> list[str]:
    return [entry["Arn"] for entry in configuration.get("Layers", [])]


# --- 1. AWS::Lambda::LayerVersion -------------------------------------------------------------


@on_servers("Ref of a layer version is a Python repr, LayerName and CompatibleArchitectures are ignored")
def test_layer_version_is_named_and_referenced_by_its_arn(aws: AWS) -> None:
    data = aws.upload_zip("core.zip", {"python/core.py": "VALUE = 1\n"})
    aws.create(
        {"CoreLayer": layer("core-data-science", "core.zip", retain=True, description="pandas and numpy")},
        outputs={"CoreLayerArn": {"Ref": "CoreLayer"}},
    )

    arn = layer_arn("core-data-science", 1)
    assert aws.physical_ids()["CoreLayer"] == arn
    assert aws.outputs()["CoreLayerArn"] == arn
    published = aws.lam.get_layer_version(LayerName="core-data-science", VersionNumber=1)
    assert published["LayerVersionArn"] == arn
    assert published["Content"]["CodeSha256"] == code_sha256(data)
    assert published["Content"]["CodeSize"] == len(data)
    assert published["CompatibleRuntimes"] == ["python3.12"]
    assert published["CompatibleArchitectures"] == ["x86_64"]
    assert published["Description"] == "pandas and numpy"
    assert published["LicenseInfo"] == "MIT"


@on_servers("a function update referencing a layer crashes ('LayerVersion' object has no attribute 'replace')")
def test_new_layer_logical_id_publishes_a_version_and_retains_the_old_one(aws: AWS) -> None:
    """SAM's pattern: a changed layer gets a new logical id; the old one (Retain) leaves the stack."""
    aws.upload_zip("app.zip", {"app.py": "def handler(event, context):\n    return 1\n"})
    aws.upload_zip("core-1.zip", {"python/core.py": "VALUE = 1\n"})
    new = aws.upload_zip("core-2.zip", {"python/core.py": "VALUE = 2\n"})
    aws.create(
        {
            "CoreLayerAAA": layer("core", "core-1.zip", retain=True),
            "Fn": function("fn", "app.zip", [{"Ref": "CoreLayerAAA"}]),
        }
    )
    aws.update(
        {
            "CoreLayerBBB": layer("core", "core-2.zip", retain=True),
            "Fn": function("fn", "app.zip", [{"Ref": "CoreLayerBBB"}]),
        }
    )

    assert layer_arns(aws.lam.get_function(FunctionName="fn")["Configuration"]) == [layer_arn("core", 2)]
    assert aws.lam.get_layer_version(LayerName="core", VersionNumber=2)["Content"]["CodeSha256"] == code_sha256(new)
    # Retained: still there, though no longer in the stack.
    assert aws.lam.get_layer_version(LayerName="core", VersionNumber=1)["LayerVersionArn"] == layer_arn("core", 1)
    assert "CoreLayerAAA" not in aws.physical_ids()


@on_servers("layer versions have no update or delete handler (DeletionPolicy and replacement are ignored)")
def test_layer_version_update_is_a_replacement_and_removal_respects_deletion_policy(aws: AWS) -> None:
    aws.upload_zip("a.zip", {"python/a.py": "A = 1\n"})
    aws.upload_zip("b.zip", {"python/b.py": "B = 1\n"})
    aws.upload_zip("a-2.zip", {"python/a.py": "A = 2\n"})
    aws.create({"Kept": layer("kept", "b.zip", retain=True), "Gone": layer("gone", "b.zip"), "A": layer("a", "a.zip")})

    aws.update({"A": layer("a", "a-2.zip")})  # same logical id, new content: a new version replaces the old

    assert aws.physical_ids()["A"] == layer_arn("a", 2)
    versions = aws.lam.list_layer_versions(LayerName="a")["LayerVersions"]
    assert [v["Version"] for v in versions] == [2]  # the replaced version is deleted (no UpdateReplacePolicy)
    assert aws.lam.list_layer_versions(LayerName="kept")["LayerVersions"][0]["Version"] == 1
    assert aws.lam.list_layer_versions(LayerName="gone")["LayerVersions"] == []


# --- 2. AWS::Lambda::Function -----------------------------------------------------------------


@on_servers("a function's Layers are dropped on create")
def test_function_layers_and_code_on_create_and_update(aws: AWS) -> None:
    first = aws.upload_zip("app-1.zip", {"app.py": "def handler(event, context):\n    return 1\n"})
    second = aws.upload_zip("app-2.zip", {"app.py": "def handler(event, context):\n    return 2\n"})
    aws.upload_zip("core.zip", {"python/core.py": "VALUE = 1\n"})
    aws.upload_zip("aws.zip", {"python/aws.py": "VALUE = 1\n"})
    layers = {"Core": layer("core", "core.zip", retain=True), "Utils": layer("utils", "aws.zip", retain=True)}
    aws.create({**layers, "Fn": function("fn", "app-1.zip", [{"Ref": "Core"}])})

    configuration = aws.lam.get_function(FunctionName="fn")["Configuration"]
    assert layer_arns(configuration) == [layer_arn("core", 1)]
    assert configuration["CodeSha256"] == code_sha256(first)

    aws.update({**layers, "Fn": function("fn", "app-2.zip", [{"Ref": "Core"}, {"Ref": "Utils"}])})
    configuration = aws.lam.get_function(FunctionName="fn")["Configuration"]
    assert layer_arns(configuration) == [layer_arn("core", 1), layer_arn("utils", 1)]
    assert configuration["CodeSha256"] == code_sha256(second)
    assert configuration["CodeSize"] == len(second)

    aws.update({**layers, "Fn": function("fn", "app-2.zip", [])})  # no layers any more
    assert layer_arns(aws.lam.get_function(FunctionName="fn")["Configuration"]) == []


@on_servers("a missing layer version is dropped on create (and a different error on update)")
def test_function_with_a_missing_layer_version_fails_like_aws(aws: AWS) -> None:
    aws.upload_zip("app.zip", {"app.py": "def handler(event, context):\n    return 1\n"})
    missing = layer_arn("x", 9)

    reason = aws.failure(lambda: aws.create({"Fn": function("fn", "app.zip", [missing])}, check=False))

    assert f"Layer version {missing} does not exist." in reason
    aws.assert_error_code(reason, "InvalidParameterValueException")


@on_servers("a missing layer version on update is 'One or more LayerVersion does not exist'")
def test_function_update_to_a_missing_layer_version_fails_like_aws(aws: AWS) -> None:
    aws.upload_zip("app.zip", {"app.py": "def handler(event, context):\n    return 1\n"})
    aws.create({"Fn": function("fn", "app.zip", [])})
    missing = layer_arn("x", 9)

    reason = aws.failure(lambda: aws.update({"Fn": function("fn", "app.zip", [missing])}, check=False))

    assert f"Layer version {missing} does not exist." in reason
    aws.assert_error_code(reason, "InvalidParameterValueException")


# --- 3. AWS::Lambda::Version ------------------------------------------------------------------


@on_servers("Ref of a version is its logical id, GetAtt Version is empty, an added version sees the old function")
def test_version_ref_getatt_and_published_configuration(aws: AWS) -> None:
    aws.upload_zip("app-1.zip", {"app.py": "def handler(event, context):\n    return 1\n"})
    second = aws.upload_zip("app-2.zip", {"app.py": "def handler(event, context):\n    return 2\n"})
    aws.upload_zip("core-1.zip", {"python/core.py": "VALUE = 1\n"})
    aws.upload_zip("core-2.zip", {"python/core.py": "VALUE = 2\n"})
    aws.create(
        {
            "CoreA": layer("core", "core-1.zip", retain=True),
            "Fn": function("fn", "app-1.zip", [{"Ref": "CoreA"}]),
            "FnVersionA": version("Fn"),
        },
        outputs={"VersionArn": {"Ref": "FnVersionA"}, "Version": {"Fn::GetAtt": ["FnVersionA", "Version"]}},
    )
    assert aws.physical_ids()["FnVersionA"] == function_arn("fn", 1)
    assert aws.outputs() == {"VersionArn": function_arn("fn", 1), "Version": "1"}
    assert layer_arns(aws.lam.get_function(FunctionName="fn", Qualifier="1")["Configuration"]) == [layer_arn("core", 1)]

    # A deploy that changes the code and the layer adds a version with a new logical id (SAM):
    # it must be published from the updated function.
    aws.update(
        {
            "CoreB": layer("core", "core-2.zip", retain=True),
            "Fn": function("fn", "app-2.zip", [{"Ref": "CoreB"}]),
            "FnVersionB": version("Fn"),
        },
        outputs={"VersionArn": {"Ref": "FnVersionB"}, "Version": {"Fn::GetAtt": ["FnVersionB", "Version"]}},
    )
    published = aws.lam.get_function(FunctionName="fn", Qualifier="2")["Configuration"]
    assert layer_arns(published) == [layer_arn("core", 2)]
    assert published["CodeSha256"] == code_sha256(second)
    assert aws.physical_ids()["FnVersionB"] == function_arn("fn", 2)
    # Version 1 left the stack but is retained, with what it had.
    kept = aws.lam.get_function(FunctionName="fn", Qualifier="1")["Configuration"]
    assert layer_arns(kept) == [layer_arn("core", 1)]


@on_servers("a version of an unchanged function is published silently (AWS fails the resource)")
def test_version_of_an_unchanged_function_fails_like_aws(aws: AWS) -> None:
    aws.upload_zip("app.zip", {"app.py": "def handler(event, context):\n    return 1\n"})
    resources = {"Fn": function("fn", "app.zip", []), "FnVersionA": version("Fn")}
    aws.create(resources)

    reason = aws.failure(lambda: aws.update({**resources, "FnVersionB": version("Fn")}, check=False))

    assert "A version for this Lambda function exists ( 1 ). Modify the function to create a new version." in reason
    aws.assert_error_code(reason, "ResourceConflictException")


# --- 4. AWS::Lambda::Alias --------------------------------------------------------------------


@on_servers("AWS::Lambda::Alias is skipped: the alias never exists")
def test_alias_is_created_moved_and_deleted(aws: AWS) -> None:
    aws.upload_zip("app-1.zip", {"app.py": "def handler(event, context):\n    return 1\n"})
    aws.upload_zip("app-2.zip", {"app.py": "def handler(event, context):\n    return 2\n"})
    aws.create(
        {"Fn": function("fn", "app-1.zip", []), "FnVersionA": version("Fn"), "FnAlias": alias("Fn", "FnVersionA")},
        outputs={"AliasArn": {"Ref": "FnAlias"}},
    )
    assert aws.lam.get_alias(FunctionName="fn", Name="live")["FunctionVersion"] == "1"
    assert aws.physical_ids()["FnAlias"] == function_arn("fn", "live")
    assert aws.outputs()["AliasArn"] == function_arn("fn", "live")

    # New code, a new version; the alias moves to it, keeping 10% on the old one.
    routing = {
        "AdditionalVersionWeights": [
            {"FunctionVersion": {"Fn::GetAtt": ["FnVersionA", "Version"]}, "FunctionWeight": 0.1}
        ]
    }
    aws.update(
        {
            "Fn": function("fn", "app-2.zip", []),
            "FnVersionA": version("Fn"),
            "FnVersionB": version("Fn"),
            "FnAlias": alias("Fn", "FnVersionB", RoutingConfig=routing),
        }
    )
    live = aws.lam.get_alias(FunctionName="fn", Name="live")
    assert live["FunctionVersion"] == "2"
    assert live["RoutingConfig"] == {"AdditionalVersionWeights": {"1": 0.1}}

    aws.update({"Fn": function("fn", "app-2.zip", []), "FnVersionA": version("Fn"), "FnVersionB": version("Fn")})
    assert aws.lam.list_aliases(FunctionName="fn")["Aliases"] == []


# --- 5. AWS::StepFunctions::StateMachine -------------------------------------------------------

DEFINITION = json.dumps(
    {
        "StartAt": "Validate",
        "States": {
            "Validate": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "${ValidateArn}", "Payload.$": "$"},
                "End": True,
            }
        },
    }
)


def state_machine(function_arn_value: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::StepFunctions::StateMachine",
        "Properties": {
            "StateMachineName": "pipeline",
            "StateMachineType": "STANDARD",
            "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
            "DefinitionString": DEFINITION,
            "DefinitionSubstitutions": {"ValidateArn": function_arn_value},
        },
    }


@on_servers("DefinitionSubstitutions are ignored and GetAtt Arn is refused")
def test_state_machine_substitutions_and_attributes(aws: AWS) -> None:
    aws.upload_zip("app.zip", {"app.py": "def handler(event, context):\n    return 1\n"})
    resources = {"Fn": function("fn", "app.zip", []), "FnVersion": version("Fn"), "FnAlias": alias("Fn", "FnVersion")}
    outputs = {
        "Ref": {"Ref": "Pipeline"},
        "Arn": {"Fn::GetAtt": ["Pipeline", "Arn"]},
        "Name": {"Fn::GetAtt": ["Pipeline", "Name"]},
    }
    aws.create({**resources, "Pipeline": state_machine({"Ref": "FnAlias"})}, outputs=outputs)

    arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:pipeline"
    assert aws.outputs() == {"Ref": arn, "Arn": arn, "Name": "pipeline"}
    deployed = json.loads(aws.sfn.describe_state_machine(stateMachineArn=arn)["definition"])
    assert deployed["States"]["Validate"]["Parameters"]["FunctionName"] == function_arn("fn", "live")

    aws.update({**resources, "Pipeline": state_machine({"Fn::GetAtt": ["Fn", "Arn"]})}, outputs=outputs)
    deployed = json.loads(aws.sfn.describe_state_machine(stateMachineArn=arn)["definition"])
    assert deployed["States"]["Validate"]["Parameters"]["FunctionName"] == function_arn("fn")
    assert aws.physical_ids()["Pipeline"] == arn


# --- 6. resources that already work must keep working -----------------------------------------


@pytest.mark.parametrize("aws", ["stock", "patched", "full"], indirect=True)
def test_events_rule_and_permission_keep_working(aws: AWS) -> None:
    aws.upload_zip("app.zip", {"app.py": "def handler(event, context):\n    return 1\n"})
    aws.create(
        {
            "Fn": function("fn", "app.zip", []),
            "Pipeline": state_machine({"Fn::GetAtt": ["Fn", "Arn"]}),
            "Rule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "EventPattern": {"source": ["aws.s3"], "detail-type": ["Object Created"]},
                    "Targets": [
                        {"Arn": {"Ref": "Pipeline"}, "Id": "pipeline", "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]}}
                    ],
                },
            },
            "Permission": {
                "Type": "AWS::Lambda::Permission",
                "Properties": {
                    "FunctionName": {"Ref": "Fn"},
                    "Action": "lambda:InvokeFunction",
                    "Principal": "events.amazonaws.com",
                    "SourceArn": {"Fn::GetAtt": ["Rule", "Arn"]},
                },
            },
        }
    )

    rule_name = aws.physical_ids()["Rule"]
    targets = aws.events.list_targets_by_rule(Rule=rule_name)["Targets"]
    assert [t["Arn"] for t in targets] == [f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:pipeline"]
    policy = json.loads(aws.lam.get_policy(FunctionName="fn")["Policy"])
    assert [s["Principal"] for s in policy["Statement"]] == [{"Service": "events.amazonaws.com"}]


# --- 7. Lambda's unzipped size limit ----------------------------------------------------------


@on_servers("any unzipped size is accepted")
def test_function_over_the_unzipped_limit_with_its_layers_fails_like_aws(aws: AWS) -> None:
    aws.upload_zeros("big-1.zip", 130_000_000)
    aws.upload_zeros("big-2.zip", 130_000_000)
    aws.upload_zeros("app.zip", 3_000_000)
    layers = {"Big1": layer("big-1", "big-1.zip", retain=True), "Big2": layer("big-2", "big-2.zip", retain=True)}

    reason = aws.failure(
        lambda: aws.create({**layers, "Fn": function("fn", "app.zip", [{"Ref": "Big1"}, {"Ref": "Big2"}])}, check=False)
    )

    assert "Unzipped size must be smaller than 2144000 bytes" in reason  # 262144000 less the layers' 260000000
    aws.assert_error_code(reason, "InvalidParameterValueException")


@on_servers("any unzipped size is accepted")
def test_layer_over_the_unzipped_limit_fails_like_aws(aws: AWS) -> None:
    aws.upload_zeros("huge.zip", 262_144_001)

    reason = aws.failure(lambda: aws.create({"Huge": layer("huge", "huge.zip")}, check=False))

    assert "Unzipped size must be smaller than 262144000 bytes" in reason
    aws.assert_error_code(reason, "InvalidParameterValueException")


# --- 8. AWS::CloudWatch::Alarm and 9. AWS::Logs::LogGroup updates ------------------------------


def alarm(threshold: float, **extra: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": "errors",
            "Namespace": "AWS/Lambda",
            "MetricName": "Errors",
            "Dimensions": [{"Name": "FunctionName", "Value": "fn"}],
            "ExtendedStatistic": "p99",
            "Period": 300,
            "EvaluationPeriods": 1,
            "Threshold": threshold,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": "Topic"}],
            **extra,
        },
    }


TOPIC = {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "alarms"}}


@on_servers("AWS::CloudWatch::Alarm is skipped: no alarm exists, GetAtt Arn of it is an HTTP 500")
def test_alarm_is_created_updated_in_place_and_deleted(aws: AWS) -> None:
    outputs = {"Name": {"Ref": "Errors"}, "Arn": {"Fn::GetAtt": ["Errors", "Arn"]}}
    aws.create({"Topic": TOPIC, "Errors": alarm(1)}, outputs=outputs)

    name = aws.outputs()["Name"]
    assert name.startswith(f"{STACK}-Errors-")
    assert aws.outputs()["Arn"] == f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"
    [created] = aws.cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    assert created["ExtendedStatistic"] == "p99"
    assert created["Dimensions"] == [{"Name": "FunctionName", "Value": "fn"}]
    assert created["AlarmActions"] == [f"arn:aws:sns:{REGION}:{ACCOUNT}:alarms"]
    aws.cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="rehearsal")

    aws.update({"Topic": TOPIC, "Errors": alarm(5)}, outputs=outputs)
    [updated] = aws.cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    assert updated["Threshold"] == 5
    assert updated["StateValue"] == "ALARM"  # an update keeps the alarm's state

    aws.update({"Topic": TOPIC}, outputs={})
    assert aws.cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"] == []


def log_group(retention: int | None) -> dict[str, Any]:
    properties: dict[str, Any] = {"LogGroupName": "/aws/lambda/fn"}
    if retention is not None:
        properties["RetentionInDays"] = retention
    return {"Type": "AWS::Logs::LogGroup", "Properties": properties}


@on_servers("a log group has no update handler: a new RetentionInDays is never applied")
def test_log_group_retention_is_updated(aws: AWS) -> None:
    aws.create({"Logs": log_group(30)})

    aws.update({"Logs": log_group(7)})
    [group] = aws.logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/fn")["logGroups"]
    assert group["retentionInDays"] == 7

    aws.update({"Logs": log_group(None)})
    [group] = aws.logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/fn")["logGroups"]
    assert "retentionInDays" not in group
