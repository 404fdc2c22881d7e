"""The deploy's pure rules: stages, the deploy template, secrets masking, the release table."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambda_ml_layers.config.stages import load_stage, parse_parameter_overrides
from lambda_ml_layers.core.errors import ConfigError
from lambda_ml_layers.deploy.deploy_log import MASK, redact, secret_values
from lambda_ml_layers.deploy.deploy_template import (
    layers_sha256,
    layers_sha_parameters,
    pin_layers,
    resolve_sub,
    template_parameters,
)
from lambda_ml_layers.deploy.release_history import History, Release, release_table

REPO = Path(__file__).resolve().parents[2]
SAMCONFIG = """
version = 0.1
[default.deploy.parameters]
region = "us-east-1"
[qa.global.parameters]
stack_name = "app-qa"
[qa.deploy.parameters]
region = "eu-west-1"
confirm_changeset = true
parameter_overrides = 'Stage=qa Note="two words"'
"""


def project(tmp_path: Path, stages: str = "") -> Path:
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "samconfig.toml").write_text(SAMCONFIG)
    (tmp_path / "infra" / "stages.toml").write_text(stages)
    return tmp_path


def test_the_repository_stages_load() -> None:
    local = load_stage(REPO, "local")
    assert local.emulated and local.smoke == "sandbox" and not local.confirm_changeset
    prod = load_stage(REPO, "prod")
    assert prod.confirm_changeset and not prod.emulated and prod.parameters == {"Stage": "prod"}


def test_stage_from_samconfig_and_stages_toml(tmp_path: Path) -> None:
    stage = load_stage(project(tmp_path, '[qa]\naccount_id = "123456789012"\n'), "qa")
    assert (stage.stack_name, stage.region, stage.confirm_changeset) == ("app-qa", "eu-west-1", True)
    assert stage.parameters == {"Stage": "qa", "Note": "two words"}
    assert stage.account_id == "123456789012"


def test_unknown_stage_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"Unknown stage 'q': .* defines qa\."):
        load_stage(project(tmp_path), "q")


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ("[qa]\naccount = 1\n", "unknown key 'account'. Perhaps you meant 'account_id'?"),
        ("[qa]\naccount_id = 123456789012\n", "account_id must be a 12-digit string"),
        ('[qa]\nsmoke = "maybe"\n', "smoke must be one of invoke, sandbox"),
        ('[qa]\nemulated = "yes"\n', "emulated must be true or false"),
        ("[qa\n", "not valid TOML"),
    ],
)
def test_bad_stage_settings_are_config_errors(tmp_path: Path, stages: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("?", r"\?")):
        load_stage(project(tmp_path, stages), "qa")


def test_parameter_overrides_must_be_key_value() -> None:
    with pytest.raises(ConfigError, match="is not Key=Value"):
        parse_parameter_overrides("Stage", "samconfig")


TEMPLATE = {
    "Parameters": {"Stage": {"Default": "dev"}, "ApiLayersSha256": {"Default": "unset"}},
    "Resources": {
        "CoreLayer": {"Type": "AWS::Serverless::LayerVersion", "Properties": {"ContentUri": "core.zip"}},
        "AwsLayer": {"Type": "AWS::Serverless::LayerVersion", "Properties": {"ContentUri": "aws.zip"}},
        "ApiFunction": {
            "Type": "AWS::Serverless::Function",
            "Properties": {"Layers": [{"Ref": "CoreLayer"}, {"Ref": "AwsLayer"}]},
        },
    },
    "Outputs": {"CoreArn": {"Value": {"Ref": "CoreLayer"}}},
}


def test_pinned_layers_leave_the_template_and_their_refs_become_arns() -> None:
    pinned = pin_layers(TEMPLATE, {"CoreLayer": "arn:aws:lambda:us-east-1:1:layer:core:3"})
    assert "CoreLayer" not in pinned["Resources"] and "AwsLayer" in pinned["Resources"]
    assert pinned["Resources"]["ApiFunction"]["Properties"]["Layers"] == [
        "arn:aws:lambda:us-east-1:1:layer:core:3",
        {"Ref": "AwsLayer"},
    ]
    assert pinned["Outputs"]["CoreArn"]["Value"] == "arn:aws:lambda:us-east-1:1:layer:core:3"
    assert "CoreLayer" in TEMPLATE["Resources"]  # the source template is untouched


def test_layers_sha_parameter_follows_code_layers_and_order() -> None:
    code = {"ApiFunction": "f" * 64}
    params = layers_sha_parameters(TEMPLATE, {"CoreLayer": "a" * 64, "AwsLayer": "b" * 64}, code)
    assert params == {"ApiLayersSha256": layers_sha256(["f" * 64, "a" * 64, "b" * 64])}
    assert layers_sha256(["a" * 64, "b" * 64]) != layers_sha256(["b" * 64, "a" * 64])
    changed_layer = layers_sha_parameters(TEMPLATE, {"CoreLayer": "a" * 64, "AwsLayer": "c" * 64}, code)
    changed_code = layers_sha_parameters(
        TEMPLATE, {"CoreLayer": "a" * 64, "AwsLayer": "b" * 64}, {"ApiFunction": "e" * 64}
    )
    assert params != changed_layer and params != changed_code


def test_template_parameters_and_sub() -> None:
    values = template_parameters(TEMPLATE, {"Stage": "prod"})
    assert values == {"Stage": "prod", "ApiLayersSha256": "unset"}
    assert resolve_sub({"Fn::Sub": "app-${Stage}-core"}, values, "LayerName") == "app-prod-core"
    with pytest.raises(ConfigError, match="AWS::AccountId"):
        resolve_sub({"Fn::Sub": "app-${AWS::AccountId}"}, values, "LayerName")
    with pytest.raises(ConfigError, match="Nope"):
        template_parameters(TEMPLATE, {"Nope": "1"})


def test_secret_values_are_masked() -> None:
    env = {
        "AWS_SECRET_ACCESS_KEY": "s3cr3t-value",
        "GITHUB_TOKEN": "ghp_abcdef",
        "HOME": "/root",
        "AWS_ACCESS_KEY_ID": "AKIA",
    }
    secrets = secret_values(env)
    assert set(secrets) == {"s3cr3t-value", "ghp_abcdef"}
    assert redact("key=s3cr3t-value tok=ghp_abcdef home=/root", secrets) == f"key={MASK} tok={MASK} home=/root"


def test_release_table_names_each_release_and_the_current_one() -> None:
    def release(number: int, kind: str, restores: int | None = None) -> Release:
        return Release(
            number=number,
            kind=kind,
            time="2026-11-27T12:00:00Z",
            stage="local",
            stack_name="s",
            git_commit="0123456789abcdef",
            git_dirty=number == 2,
            caller_account="1",
            caller_arn="arn",
            layers={"core": {"arn": f"arn:aws:lambda:r:1:layer:core:{number}", "sha256": "x", "logical_id": "C"}},
            functions={},
            template_sha256="t",
            parameters={},
            restores=restores,
        )

    table = release_table(History((release(1, "deploy"), release(2, "deploy"), release(3, "rollback", 1))))
    assert "rollback of 1" in table and "0123456789+dirty" in table and "core:3" in table
    assert table.endswith("current: release 3")


def test_the_smoke_event_is_defined_once_by_the_handlers() -> None:
    """The engine reads the handlers' SMOKE_EVENT instead of keeping a copy of it."""
    from lambda_ml_layers.local.sandbox import smoke_event

    assert smoke_event() == {"smoke": "lambda-ml-layers"}
    spelled = [
        str(path.relative_to(REPO))
        for top in ("lambda_ml_layers", "services")
        for path in (REPO / top).rglob("*.py")
        if not path.is_symlink() and "SMOKE_EVENT = " in path.read_text()
    ]
    assert spelled == ["services/shared/runtime.py"]


def test_expected_layers_match_sam_renamed_layers_exactly() -> None:
    from lambda_ml_layers.deploy.deploy_plan import expected_layers
    from lambda_ml_layers.deploy.deployed_state import StackState

    state = StackState(
        status="UPDATE_COMPLETE",
        resources={
            "CoreLayerExtra0123456789": ("AWS::Lambda::LayerVersion", "arn:wrong"),
            "CoreLayer0a1b2c3d4e": ("AWS::Lambda::LayerVersion", "arn:core:7"),
        },
        functions={},
        state_machine_definitions={},
    )
    pinned = pin_layers(TEMPLATE, {"AwsLayer": "arn:aws:2"})
    assert expected_layers(pinned, state) == {"ApiFunction": ["arn:core:7", "arn:aws:2"]}


def test_a_stack_being_changed_elsewhere_is_refused() -> None:
    from lambda_ml_layers.core.errors import StageBusy
    from lambda_ml_layers.deploy.stage_lock import refuse_if_in_progress

    with pytest.raises(StageBusy, match="UPDATE_IN_PROGRESS: someone else is changing it"):
        refuse_if_in_progress("UPDATE_IN_PROGRESS", "prod", "app-prod")
    for settled in (None, "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS"):
        refuse_if_in_progress(settled, "prod", "app-prod")  # a dry run's pending review is no change


def test_state_machine_must_call_the_stack_functions_it_uses_through_the_live_alias() -> None:
    from lambda_ml_layers.deploy.deployed_state import FunctionState, state_machine_problems

    base = "arn:aws:lambda:us-east-1:123456789012:function"
    functions = [
        FunctionState("Validate", "app-validate", "3", f"{base}:app-validate:live", (), {}),
        FunctionState("Distance", "app-distance", "1", f"{base}:app-distance:live", (), {}),  # not in the machine
    ]
    through_alias = f'{{"Resource": "arn:aws:states:::lambda:invoke", "FunctionName": "{base}:app-validate:live"}}'
    assert state_machine_problems("Pipeline", through_alias, functions) == []
    for stale in (f"{base}:app-validate", f"{base}:app-validate:2", f"{base}:app-validate:$LATEST"):
        [problem] = state_machine_problems("Pipeline", f'{{"FunctionName": "{stale}"}}', functions)
        assert problem == f"state machine Pipeline calls {stale.rsplit(':function:', 1)[1]}, not the 'live' alias"
    [none] = state_machine_problems("Pipeline", '{"States": {}}', functions)
    assert none == "state machine Pipeline calls none of the stack's functions (app-distance, app-validate)"
