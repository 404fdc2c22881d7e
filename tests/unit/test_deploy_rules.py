"""The deploy's pure rules: stages, the deploy template, secrets masking, the release table."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from lambda_ml_layers.config.stages import load_stage, parse_parameter_overrides, stage_names
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
from lambda_ml_layers.deploy.stage_context import sigterm_as_interrupt

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


def project(tmp_path: Path, stages: str = "[qa]\n", samconfig: str = SAMCONFIG) -> Path:
    """A project with one stage, qa; its stages.toml section says `emulated = false` unless `stages`
    sets `emulated` itself."""
    (tmp_path / "infra").mkdir(parents=True)
    (tmp_path / "infra" / "samconfig.toml").write_text(samconfig)
    if "emulated" not in stages:
        stages = stages.replace("[qa]\n", "[qa]\nemulated = false\n", 1)
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


def test_a_stage_says_where_it_runs_and_a_missing_line_is_an_error(tmp_path: Path) -> None:
    """No default: without the line (or the file) a stage is refused, never taken for a real-AWS one."""
    assert load_stage(project(tmp_path / "real", "[qa]\nemulated = false\n"), "qa").emulated is False
    assert load_stage(project(tmp_path / "emulated", "[qa]\nemulated = true\n"), "qa").emulated is True
    without_line = project(tmp_path / "line", '[qa]\nsmoke = "sandbox"\n')
    (without_line / "infra" / "stages.toml").write_text('[qa]\nsmoke = "sandbox"\n')
    with pytest.raises(ConfigError, match=r"stages\.toml \[qa\]: no `emulated` line\. Fix: .*emulated = true"):
        load_stage(without_line, "qa")
    without_section = project(tmp_path / "section")
    (without_section / "infra" / "stages.toml").write_text("")
    with pytest.raises(ConfigError, match=r"stages\.toml: no \[qa\] section .*emulated = false"):
        load_stage(without_section, "qa")
    without_file = project(tmp_path / "file")
    (without_file / "infra" / "stages.toml").unlink()
    with pytest.raises(ConfigError, match=r"infra/stages\.toml: file is missing\..*git checkout -- infra/stages\.toml"):
        load_stage(without_file, "qa")


def test_the_local_stage_is_always_the_emulator(tmp_path: Path) -> None:
    root = project(tmp_path, "[local]\nemulated = false\n", SAMCONFIG.replace("[qa.", "[local."))
    with pytest.raises(ConfigError, match=r"\[local\]: emulated = false, but stage 'local' is the local emulator"):
        load_stage(root, "local")


def test_the_repository_local_stage_without_stages_toml_is_refused(tmp_path: Path) -> None:
    (tmp_path / "infra").mkdir()
    shutil.copy(REPO / "infra" / "samconfig.toml", tmp_path / "infra" / "samconfig.toml")
    with pytest.raises(ConfigError, match=r"stages\.toml: file is missing"):
        load_stage(tmp_path, "local")
    (tmp_path / "infra" / "stages.toml").write_text(
        (REPO / "infra" / "stages.toml").read_text().replace("emulated = true\n", "")
    )
    with pytest.raises(ConfigError, match=r"\[local\]: no `emulated` line"):
        load_stage(tmp_path, "local")


@pytest.mark.parametrize("name", ["../../tmpvictim", "a/b", "-x", "qa.", "", "é", "x" * 65])
def test_stage_names_from_samconfig_are_checked_before_use(tmp_path: Path, name: str) -> None:
    samconfig = SAMCONFIG + f'[{json.dumps(name)}.global.parameters]\nstack_name = "app-x"\n'
    root = project(tmp_path, samconfig=samconfig)
    with pytest.raises(ConfigError, match=r"samconfig\.toml: stage name .* is not allowed: .*letters, digits and '-'"):
        load_stage(root, "qa")
    with pytest.raises(ConfigError, match="is not allowed"):
        stage_names(root)


@pytest.mark.parametrize("name", ["../../tmpvictim", "qa/..", "QA QA"])
def test_stage_names_from_the_command_line_are_checked(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match=r"^--stage: stage name .* is not allowed"):
        load_stage(project(tmp_path), name)


def test_stage_names_in_stages_toml_are_checked_and_must_be_stages(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"stages\.toml: stage name '\.\./x' is not allowed"):
        load_stage(project(tmp_path / "a", '[qa]\n["../x"]\nemulated = true\n'), "qa")
    with pytest.raises(
        ConfigError, match=r"\[qaa\] is no stage of .*samconfig\.toml \(qa\)\. Perhaps you meant \[qa\]\?"
    ):
        load_stage(project(tmp_path / "b", "[qa]\n[qaa]\nemulated = true\n"), "qa")


def test_a_stack_name_must_be_a_cloudformation_name(tmp_path: Path) -> None:
    root = project(tmp_path, samconfig=SAMCONFIG.replace('"app-qa"', '"../app"'))
    with pytest.raises(ConfigError, match=r"stack_name '\.\./app' is not a CloudFormation stack name"):
        load_stage(root, "qa")


@pytest.mark.parametrize(
    ("stages", "samconfig", "message"),
    [
        (
            "[qa]\n",
            SAMCONFIG.replace("[qa.deploy.parameters]", "[qa.deploy]\nparameters = 'x'\n[qa.other]"),
            r"qa\.deploy\.parameters must be a table",
        ),
        (
            "[qa]\n",
            SAMCONFIG.replace("[qa.global.parameters]", "[qa]\nglobal = 3\n[qa.x]"),
            r"qa\.global must be a table",
        ),
        ("[qa]\n", 'version = 0.1\nqa = "x"\n', r"samconfig\.toml: qa must be a table"),
        ("qa = 3\n", SAMCONFIG, r"stages\.toml: qa = 3 must be a table"),
        ("[qa]\n", SAMCONFIG.replace('stack_name = "app-qa"', "stack_name = 3"), "stack_name must be a string"),
        (
            "[qa]\n",
            SAMCONFIG.replace("confirm_changeset = true", 'confirm_changeset = "no"'),
            "confirm_changeset must be true or false",
        ),
        (
            "[qa]\n",
            SAMCONFIG.replace("parameter_overrides = 'Stage=qa Note=\"two words\"'", "parameter_overrides = 3"),
            "parameter_overrides must be a string",
        ),
    ],
)
def test_a_samconfig_or_stages_toml_of_the_wrong_shape_is_a_config_error(
    tmp_path: Path, stages: str, samconfig: str, message: str
) -> None:
    root = project(tmp_path, stages, samconfig)
    if stages.startswith("qa ="):
        (root / "infra" / "stages.toml").write_text(stages)
    with pytest.raises(ConfigError, match=message):
        load_stage(root, "qa")


def test_parameter_overrides_may_be_a_list_as_sam_allows(tmp_path: Path) -> None:
    samconfig = SAMCONFIG.replace(
        "parameter_overrides = 'Stage=qa Note=\"two words\"'", 'parameter_overrides = ["Stage=qa", "Note=two words"]'
    )
    assert load_stage(project(tmp_path, samconfig=samconfig), "qa").parameters == {"Stage": "qa", "Note": "two words"}


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
    layers = {"CoreLayer": "a" * 64, "AwsLayer": "b" * 64}
    params = layers_sha_parameters(TEMPLATE, layers, code, {"Stage": "dev"})
    assert set(params) == {"ApiLayersSha256"}
    assert layers_sha256(["a" * 64, "b" * 64]) != layers_sha256(["b" * 64, "a" * 64])
    changed_layer = layers_sha_parameters(TEMPLATE, {**layers, "AwsLayer": "c" * 64}, code, {"Stage": "dev"})
    changed_code = layers_sha_parameters(TEMPLATE, layers, {"ApiFunction": "e" * 64}, {"Stage": "dev"})
    assert params != changed_layer and params != changed_code
    # Its own recorded value (a rollback redeploys it) is no input of the digest.
    assert layers_sha_parameters(TEMPLATE, layers, code, {"Stage": "dev", "ApiLayersSha256": "9" * 64}) == params


def with_function_properties(**changes: object) -> dict[str, object]:
    template = copy.deepcopy(TEMPLATE)
    template["Resources"]["ApiFunction"]["Properties"].update(changes)  # type: ignore[index]
    return template


@pytest.mark.parametrize(
    "changes",
    [
        {"MemorySize": 3008},
        {"Timeout": 900},
        {"Environment": {"Variables": {"MODE": "fast"}}},
        {"EphemeralStorage": {"Size": 2048}},
        {"ReservedConcurrentExecutions": 5},
        {"Handler": "api.other.handler"},
        {"Environment": {"Variables": {"STAGE": {"Ref": "Stage"}}}},
    ],
)
def test_a_configuration_change_alone_changes_the_version_digest(changes: dict[str, object]) -> None:
    """SAM names the version by AutoPublishCodeSha256 alone, so the digest must cover the
    configuration: otherwise `live` stays on the old version (issue 19)."""
    code, layers, parameters = (
        {"ApiFunction": "f" * 64},
        {"CoreLayer": "a" * 64, "AwsLayer": "b" * 64},
        {"Stage": "dev"},
    )
    before = layers_sha_parameters(TEMPLATE, layers, code, parameters)
    after = layers_sha_parameters(with_function_properties(**changes), layers, code, parameters)
    assert after != before
    again = layers_sha_parameters(with_function_properties(**changes), layers, code, parameters)
    assert again == after  # the same template gives the same digest: an unchanged redeploy publishes nothing


def test_globals_and_parameter_values_are_part_of_the_version_digest() -> None:
    code, layers = {"ApiFunction": "f" * 64}, {"CoreLayer": "a" * 64, "AwsLayer": "b" * 64}
    template = {**with_function_properties(Environment={"Variables": {"STAGE": {"Ref": "Stage"}}})}
    dev = layers_sha_parameters(template, layers, code, {"Stage": "dev"})
    assert layers_sha_parameters(template, layers, code, {"Stage": "prod"}) != dev
    with_globals = {**template, "Globals": {"Function": {"MemorySize": 2048}}}
    assert layers_sha_parameters(with_globals, layers, code, {"Stage": "dev"}) != dev
    # Where the package was zipped from is not configuration (its bytes are in the digest already).
    moved = with_function_properties(Environment={"Variables": {"STAGE": {"Ref": "Stage"}}}, CodeUri="/elsewhere")
    assert layers_sha_parameters(moved, layers, code, {"Stage": "dev"}) == dev


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
    assert "notes cut" not in table

    # A restore's note names every failed check with its full ARNs; its row stays readable.
    arns = "; ".join(f"arn:aws:lambda:us-east-1:123456789012:function:f{n}:{n} has layer X" for n in range(60))
    restore = dataclasses.replace(release(4, "restore", 3), note=f"after failed post-deploy checks: {arns}")
    table = release_table(History((release(3, "deploy"), restore)))
    row = next(line for line in table.splitlines() if line.startswith("4 "))
    assert len(row) < 200 and row.endswith("…") and "after failed post-deploy checks" in row
    assert "(notes cut at 80 characters: `--json` shows them whole)" in table


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


def test_an_emulated_stage_never_gets_the_real_credential_chain(tmp_path: Path) -> None:
    from lambda_ml_layers.core.errors import LocalAWSError
    from lambda_ml_layers.deploy.stage_session import StageSession

    emulated = load_stage(project(tmp_path / "e", "[qa]\nemulated = true\n"), "qa")
    with pytest.raises(LocalAWSError, match=r"emulated .* no local emulator endpoint was given"):
        StageSession(emulated, None)
    real = load_stage(project(tmp_path / "r"), "qa")
    with pytest.raises(LocalAWSError, match=r"real AWS stage .* local emulator's endpoint"):
        StageSession(real, "http://localhost:1")
    assert StageSession(emulated, "http://localhost:1").environment()["AWS_ENDPOINT_URL"] == "http://localhost:1"


def test_sigterm_is_an_interrupt_only_inside_the_block() -> None:
    def previous(signum: int, frame: object) -> None:
        raise AssertionError("the handler from before the block ran inside it")

    original = signal.signal(signal.SIGTERM, previous)
    try:
        with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
        assert signal.getsignal(signal.SIGTERM) is previous
    finally:
        signal.signal(signal.SIGTERM, original)
