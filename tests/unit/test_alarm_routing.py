"""Where a stage's alarms go: infra/stages.toml's alarms_to, the template parameters, the prod gate."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lambda_ml_layers.config.stages import (
    Stage,
    alarm_destination,
    alarm_parameters,
    load_stage,
    refuse_unrouted_alarms,
)
from lambda_ml_layers.core.errors import ConfigError, DeployGateError
from tests.unit.test_deploy_rules import project

REPO = Path(__file__).resolve().parents[2]


def stage(name: str, alarms_to: str | None) -> Stage:
    return Stage(name, f"app-{name}", "us-east-1", False, {"Stage": name}, emulated=False, alarms_to=alarms_to)


@pytest.mark.parametrize(
    ("alarms_to", "parameters", "said"),
    [
        (
            "ops@example.com",
            {"AlarmProtocol": "email", "AlarmEndpoint": "ops@example.com"},
            "e-mail to ops@example.com",
        ),
        (
            "https://alerts.example.com/hook?x=1",
            {"AlarmProtocol": "https", "AlarmEndpoint": "https://alerts.example.com/hook?x=1"},
            "HTTPS POST to https://alerts.example.com/hook?x=1",
        ),
        (None, {"AlarmProtocol": "none", "AlarmEndpoint": "none"}, "Alarms go nowhere"),
    ],
)
def test_alarms_to_becomes_the_subscription(alarms_to: str | None, parameters: dict[str, str], said: str) -> None:
    assert alarm_parameters(stage("qa", alarms_to)) == parameters
    assert said in alarm_destination(stage("qa", alarms_to))
    assert "lambda-ml-layers-qa-alarms" in alarm_destination(stage("qa", alarms_to))


def test_prod_without_a_destination_is_refused_naming_the_file_and_key() -> None:
    with pytest.raises(DeployGateError, match=r"infra/stages.toml \[prod\].*alarms_to.*Nothing was uploaded"):
        refuse_unrouted_alarms(stage("prod", None))
    refuse_unrouted_alarms(stage("prod", "ops@example.com"))
    refuse_unrouted_alarms(stage("dev", None))  # other stages may go without


def test_alarms_to_is_read_from_stages_toml(tmp_path: Path) -> None:
    assert load_stage(project(tmp_path, '[qa]\nalarms_to = "ops@example.com"\n'), "qa").alarms_to == "ops@example.com"


@pytest.mark.parametrize("value", ['"ops"', '"http://alerts.example.com/x"', '"mailto:ops@example.com"', "3", '""'])
def test_a_bad_alarms_to_is_a_config_error(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="alarms_to must be an e-mail address"):
        load_stage(project(tmp_path, f"[qa]\nalarms_to = {value}\n"), "qa")


def test_inv_deploy_prod_refuses_before_building_or_uploading(tmp_path: Path) -> None:
    """The repository's prod names no destination yet: the deploy stops at once, exit 12."""
    assert load_stage(REPO, "prod").alarms_to is None
    result = subprocess.run(
        [str(REPO / ".venv" / "bin" / "inv"), "--search-root", str(REPO), "deploy", "--stage", "prod", "--yes"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 12, result.stdout + result.stderr
    assert "alarms_to" in result.stderr and "Traceback" not in result.stderr
    assert "build layers" not in result.stdout + result.stderr


def test_no_template_parameter_defaults_to_an_empty_value() -> None:
    """The deploy passes every parameter to `sam deploy --parameter-overrides`, which refuses `Key=`."""
    from lambda_ml_layers.config.template import load_template

    template = load_template(REPO / "infra" / "template.yaml")
    empty = [name for name, spec in template["Parameters"].items() if str(spec.get("Default", "x")) == ""]
    assert empty == []
    assert all(alarm_parameters(stage("qa", value)).values() for value in (None, "ops@example.com"))
