"""What a function's live version should run, and every way it differs (deploy/live_config.py)."""

from __future__ import annotations

import copy
from typing import Any

from lambda_ml_layers.deploy.deployed_state import FunctionState, StackState, check_stack
from lambda_ml_layers.deploy.live_config import (
    IntendedFunction,
    intended_function,
    intended_functions,
    live_differences,
    live_values,
    merge_globals,
)

CORE = "arn:aws:lambda:us-east-1:123456789012:layer:core:3"
AWS = "arn:aws:lambda:us-east-1:123456789012:layer:aws:2"
TEMPLATE: dict[str, Any] = {
    "Globals": {
        "Function": {
            "Runtime": "python3.12",
            "Architectures": ["x86_64"],
            "MemorySize": 1024,
            "Timeout": 120,
            "Environment": {"Variables": {"STAGE": {"Ref": "Stage"}, "DATA_BUCKET": {"Ref": "DataBucket"}}},
        }
    },
    "Resources": {
        "ApiFunction": {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "Handler": "api.handler.lambda_handler",
                "MemorySize": 3008,
                "EphemeralStorage": {"Size": 2048},
                "ReservedConcurrentExecutions": 20,
                "Environment": {"Variables": {"MODE": "fast"}},
                "Layers": [CORE, AWS],
            },
        },
        "PlainFunction": {"Type": "AWS::Serverless::Function", "Properties": {"Handler": "plain.handler"}},
    },
}
PARAMETERS = {"Stage": "local"}
RESOURCES = {"DataBucket": "app-local-data-123456789012"}
# What Lambda answers for a version that is exactly what TEMPLATE says.
LIVE_CONFIGURATION: dict[str, Any] = {
    "FunctionName": "app-local-api",
    "Version": "3",
    "CodeSha256": "Y29kZQ==",
    "Handler": "api.handler.lambda_handler",
    "Runtime": "python3.12",
    "Architectures": ["x86_64"],
    "MemorySize": 3008,
    "Timeout": 120,
    "EphemeralStorage": {"Size": 2048},
    "Environment": {
        "Variables": {"STAGE": "local", "DATA_BUCKET": "app-local-data-123456789012", "MODE": "fast"},
    },
    "Layers": [{"Arn": CORE, "CodeSize": 1}, {"Arn": AWS, "CodeSize": 2}],
}
WHERE = "ApiFunction live (version 3)"


def intended() -> IntendedFunction:
    return intended_function(TEMPLATE, "ApiFunction", PARAMETERS, RESOURCES, [CORE, AWS], "Y29kZQ==")


def compare(
    configuration: dict[str, Any], reserved: int | None = 20, unread: dict[str, str] | None = None
) -> list[str]:
    problems, _notes = live_differences(WHERE, intended(), live_values(configuration, reserved), unread or {})
    return problems


def test_globals_merge_as_sam_merges_them() -> None:
    assert merge_globals({"a": 1, "env": {"X": "1"}}, {"a": 2, "env": {"Y": "2"}}) == {
        "a": 2,
        "env": {"X": "1", "Y": "2"},
    }
    assert merge_globals(["g"], ["l"]) == ["g", "l"]
    assert merge_globals(1024, 3008) == 3008


def test_intended_configuration_merges_globals_resolves_refs_and_fills_lambda_defaults() -> None:
    api = intended()
    assert api.settings == {
        "MemorySize": 3008,
        "Timeout": 120,
        "EphemeralStorage": 2048,
        "Environment": {"STAGE": "local", "DATA_BUCKET": "app-local-data-123456789012", "MODE": "fast"},
        "Runtime": "python3.12",
        "Architectures": ["x86_64"],
        "Handler": "api.handler.lambda_handler",
        "ReservedConcurrentExecutions": 20,
    }
    plain = intended_function({"Resources": TEMPLATE["Resources"]}, "PlainFunction", {}, {}, [], None)
    assert plain.settings["MemorySize"] == 128 and plain.settings["Timeout"] == 3
    assert plain.settings["EphemeralStorage"] == 512 and plain.settings["Environment"] == {}
    assert plain.settings["ReservedConcurrentExecutions"] is None


def test_a_version_that_is_what_the_template_says_has_no_difference() -> None:
    problems, notes = live_differences(WHERE, intended(), live_values(LIVE_CONFIGURATION, 20), {})
    assert problems == [] and notes == []


def test_each_difference_is_named_with_both_values() -> None:
    drifted = copy.deepcopy(LIVE_CONFIGURATION)
    drifted.update(
        MemorySize=1769,
        Timeout=900,
        EphemeralStorage={"Size": 512},
        Runtime="python3.11",
        Architectures=["arm64"],
        Handler="api.old.lambda_handler",
        CodeSha256="b2xk",
        Layers=[{"Arn": CORE}],
    )
    drifted["Environment"]["Variables"].pop("MODE")
    drifted["Environment"]["Variables"]["STAGE"] = "dev"
    drifted["Environment"]["Variables"]["DEBUG"] = "1"
    assert compare(drifted, reserved=None) == [
        f"{WHERE}: CodeSha256 b2xk, template says Y29kZQ==",
        f"{WHERE}: Layers ['{CORE}'], template says ['{CORE}', '{AWS}']",
        f"{WHERE}: MemorySize 1769, template says 3008",
        f"{WHERE}: Timeout 900, template says 120",
        f"{WHERE}: EphemeralStorage 512, template says 2048",
        f"{WHERE}: Environment DEBUG is '1', template says nothing of it",
        f"{WHERE}: Environment MODE is not set, template says 'fast'",
        f"{WHERE}: Environment STAGE 'dev', template says 'local'",
        f"{WHERE}: Runtime python3.11, template says python3.12",
        f"{WHERE}: Architectures ['arm64'], template says ['x86_64']",
        f"{WHERE}: Handler api.old.lambda_handler, template says api.handler.lambda_handler",
        f"{WHERE}: reserved concurrency (the function's) none, template says 20",
    ]


def test_a_version_without_variables_differs_from_a_template_with_some() -> None:
    bare = {key: value for key, value in LIVE_CONFIGURATION.items() if key != "Environment"}
    assert f"{WHERE}: Environment MODE is not set, template says 'fast'" in compare(bare)


def test_what_cannot_be_known_or_read_is_said_not_verified() -> None:
    template = copy.deepcopy(TEMPLATE)
    variables = template["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]
    variables["QUEUE_URL"] = {"Fn::GetAtt": ["Queue", "QueueUrl"]}
    api = intended_function(template, "ApiFunction", PARAMETERS, RESOURCES, [CORE, AWS], None)
    live = live_values({k: v for k, v in LIVE_CONFIGURATION.items() if k != "EphemeralStorage"}, 20)
    live["Environment"]["QUEUE_URL"] = "whatever CloudFormation made"
    problems, notes = live_differences(WHERE, api, live, {"ReservedConcurrentExecutions": "AccessDenied"})
    assert problems == []
    assert notes == [
        f"{WHERE}: Environment QUEUE_URL not compared: cannot be known before deploying (Fn::GetAtt ['Queue', "
        "'QueueUrl'])",
        f"{WHERE}: ReservedConcurrentExecutions not compared: cannot be read back (AccessDenied)",
        f"{WHERE}: code digest not compared: the build's digest is not known",
        f"{WHERE}: EphemeralStorage not compared: Lambda's answer has none",
    ]


def test_check_stack_names_the_function_alias_and_version() -> None:
    drifted = {**LIVE_CONFIGURATION, "MemorySize": 1769, "Version": "2"}
    function = FunctionState(
        "ApiFunction",
        "app-local-api",
        "2",
        "arn:aws:lambda:us-east-1:123456789012:function:app-local-api:live",
        (CORE, AWS),
        drifted,
        reserved_concurrency=20,
    )
    state = StackState("UPDATE_COMPLETE", {}, {"ApiFunction": function}, {})
    wanted = intended_functions(
        TEMPLATE, PARAMETERS, RESOURCES, {"ApiFunction": [CORE, AWS]}, {"ApiFunction": "Y29kZQ=="}
    )
    problems, notes = check_stack(state, wanted, "release 4 says")
    assert problems == ["ApiFunction live (version 2): MemorySize 1769, release 4 says 3008"] and notes == []
