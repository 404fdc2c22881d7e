"""The state machine's definition read from a SAM template, substitutions filled with functions'
logical ids: the real template, and small templates in a tmp dir for each refusal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from lambda_ml_layers.core.errors import StateMachineError
from lambda_ml_layers.local.quick_pipeline import PipelineRequest, pipeline_request
from lambda_ml_layers.local.state_machine_definition import load_state_machine
from tests.project_factory import REPO

TEMPLATE = REPO / "infra" / "template.yaml"
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"


def test_the_real_template_resolves_to_function_logical_ids_or_their_arns() -> None:
    machine = load_state_machine(TEMPLATE)
    assert machine.substitutions["DataValidationArn"] == "DataValidationFunction"
    assert set(machine.substitutions.values()) <= machine.functions
    arn = "arn:aws:lambda:us-east-1:123456789012:function:local-DataValidationFunction"
    with_arns = load_state_machine(TEMPLATE, function_refs={"DataValidationFunction": arn})
    assert with_arns.definition["States"]["Validate"]["Parameters"]["FunctionName"] == arn
    names = []

    def walk(scope: dict[str, Any]) -> None:
        for state in scope["States"].values():
            if state["Type"] == "Task" and state["Resource"] == LAMBDA_INVOKE:
                names.append(state["Parameters"]["FunctionName"])
            if state["Type"] == "Map":
                walk(state.get("ItemProcessor") or state["Iterator"])

    walk(machine.definition)
    assert names and set(names) <= machine.functions
    assert "${" not in json.dumps(machine.definition)


FUNCTION = {"Type": "AWS::Serverless::Function", "Properties": {"Handler": "a.b", "CodeUri": "x/"}}


def write_template(
    tmp: Path, substitutions: dict[str, Any], definition: dict[str, Any] | None = None, **props: Any
) -> Path:
    machine_props: dict[str, Any] = {"DefinitionSubstitutions": substitutions, **props}
    if definition is not None:
        machine_props["Definition"] = definition
    template = {
        "Parameters": {"Stage": {"Type": "String", "Default": "local"}},
        "Resources": {
            "Work": FUNCTION,
            "Bucket": {"Type": "AWS::S3::Bucket"},
            "PipelineStateMachine": {"Type": "AWS::Serverless::StateMachine", "Properties": machine_props},
        },
    }
    path = tmp / "template.yaml"
    text = yaml.safe_dump(template)
    # the CloudFormation short forms, as the real template writes them
    path.write_text(text.replace("REF_ALIAS", "!Ref Work.Alias").replace("GETATT_ARN", "!GetAtt Work.Arn"))
    return path


def one_task(function: str) -> dict[str, Any]:
    return {
        "StartAt": "T",
        "States": {
            "T": {"Type": "Task", "Resource": LAMBDA_INVOKE, "Parameters": {"FunctionName": function}, "End": True}
        },
    }


@pytest.mark.parametrize("form", ["REF_ALIAS", "GETATT_ARN"])
def test_alias_ref_and_getatt_arn_name_the_function(tmp_path: Path, form: str) -> None:
    path = write_template(tmp_path, {"WorkArn": form, "Where": "s3://x"}, one_task("${WorkArn}"))
    machine = load_state_machine(path)
    assert machine.definition["States"]["T"]["Parameters"]["FunctionName"] == "Work"
    assert machine.functions == {"Work"}


def test_a_definition_string_is_read_as_json(tmp_path: Path) -> None:
    path = write_template(tmp_path, {"WorkArn": "REF_ALIAS"}, DefinitionString=json.dumps(one_task("${WorkArn}")))
    assert load_state_machine(path).definition["StartAt"] == "T"


def test_a_substitution_that_names_no_function_is_refused_naming_the_key(tmp_path: Path) -> None:
    path = write_template(tmp_path, {"WorkArn": {"Ref": "Bucket"}}, one_task("${WorkArn}"))
    with pytest.raises(StateMachineError) as raised:
        load_state_machine(path)
    message = str(raised.value)
    assert raised.value.exit_code == 29
    assert "DefinitionSubstitutions WorkArn" in message and "'Bucket' is not a function of the template" in message
    assert "Fix: refer to a function with !Ref X.Alias" in message


def test_a_placeholder_without_a_substitution_is_refused(tmp_path: Path) -> None:
    path = write_template(tmp_path, {"WorkArn": "REF_ALIAS"}, one_task("${OtherArn}"))
    with pytest.raises(StateMachineError, match=r"\$\{OtherArn\} has no DefinitionSubstitutions entry"):
        load_state_machine(path)


def test_no_readable_definition_or_no_state_machine_is_refused(tmp_path: Path) -> None:
    path = write_template(tmp_path, {}, None, DefinitionUri="statemachine.asl.json")
    with pytest.raises(StateMachineError, match="DefinitionUri"):
        load_state_machine(path)
    with pytest.raises(StateMachineError, match=r"state machines: PipelineStateMachine"):
        load_state_machine(path, "Nope")


def test_run_pipeline_arguments_are_checked_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(StateMachineError, match=r"--batch nope.csv: no such file"):
        pipeline_request(tmp_path, "nope.csv", None)
    batch = tmp_path / "b.csv"
    batch.write_text("transaction_id\n")
    for bad in ("0", "9", "two"):
        with pytest.raises(StateMachineError, match="--sandboxes must be a whole number from 1 to 8"):
            pipeline_request(tmp_path, str(batch), bad)
    assert pipeline_request(tmp_path, str(batch), "2") == PipelineRequest(tmp_path, batch.resolve(), 2)
