"""Numeric options are checked before anything runs: a bad value is a clear error, never a
traceback and never a gate silently switched off."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lambda_ml_layers.build.build_layers import BuildRequest, build_layers
from lambda_ml_layers.core.errors import ConfigError
from lambda_ml_layers.core.options import parse_build_options, parse_headroom_mb, parse_jobs, parse_release_number
from tests.project_factory import REPO, tiny_project

BAD_NUMBERS = ["-5", "-0.001", "nan", "NaN", "inf", "-inf", "1e30", "262.145", "abc", "", "5MB"]


@pytest.mark.parametrize("text", BAD_NUMBERS)
def test_bad_headroom_is_a_config_error_naming_the_option_and_range(text: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_headroom_mb(text)
    assert f"--headroom-mb must be a number of MB from 0 to 262.144 (Lambda's whole limit), not {text!r}" in str(
        error.value
    )


@pytest.mark.parametrize("text", ["0", "-1", "33", "2.5", "nan", "inf", "two", "1e3", ""])
def test_bad_jobs_is_a_config_error_naming_the_option_and_range(text: str) -> None:
    with pytest.raises(ConfigError, match=r"--jobs must be a whole number from 1 to 32"):
        parse_jobs(text)


def test_good_values_and_defaults() -> None:
    assert parse_headroom_mb(None) == 5_000_000
    assert parse_headroom_mb("0") == 0
    assert parse_headroom_mb(" 12.5 ") == 12_500_000
    assert parse_headroom_mb("262.143") == 262_143_000
    assert parse_headroom_mb("262.144") == 262_144_000  # no room at all: every function fails its gate
    assert parse_jobs(None) == 2
    assert parse_jobs("1") == 1
    assert parse_jobs("32") == 32


def test_every_bad_option_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as error:
        parse_build_options("0", "-5")
    assert "--jobs" in str(error.value)
    assert "--headroom-mb" in str(error.value)


@pytest.mark.parametrize("options", [{"headroom_bytes": -5_000_000}, {"headroom_bytes": 10**36}, {"jobs": 0}])
def test_the_engine_refuses_out_of_range_numbers_from_any_caller(tmp_path: Path, options: dict[str, int]) -> None:
    project = tiny_project(tmp_path)
    with pytest.raises(ConfigError, match=r"Invalid build request"):
        build_layers(BuildRequest(root=project.root, find_links=project.wheels_dir, **options))  # type: ignore[arg-type]
    assert not project.paths.build.exists()  # refused before anything was written


@pytest.mark.parametrize("option", [["--headroom-mb", "-5"], ["--headroom-mb=nan"], ["--jobs", "x"]])
def test_the_command_line_exits_2_without_a_traceback(tmp_path: Path, option: list[str]) -> None:
    project = tiny_project(tmp_path)
    command = [sys.executable, "-m", "invoke", "--search-root", str(REPO), "build-layers", "--root", str(project.root)]
    result = subprocess.run(
        [*command, "--find-links", str(project.wheels_dir), *option],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "must be" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not project.paths.published.exists()


@pytest.mark.parametrize("text", ["\u00b2", "\u0663", "x", "1.5", "-1", "", " "])
def test_a_release_number_is_ascii_digits(text: str) -> None:
    with pytest.raises(ConfigError, match=r"--to must be a release number like 3 \(see `inv releases --stage qa`\)"):
        parse_release_number(text, "qa")


def test_release_numbers_start_at_1() -> None:
    with pytest.raises(ConfigError, match=r"--to 0: release numbers start at 1"):
        parse_release_number("0", "qa")
    assert parse_release_number(None, "qa") is None
    assert parse_release_number(" 7 ", "qa") == 7


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (["rollback", "--stage", "local", "--to", "\u00b2"], "--to must be a release number like 3"),
        (["rollback", "--stage", "local", "--to", "0"], "--to 0: release numbers start at 1"),
        (["cold-starts", "--stage", "dev", "--since", "99999999d"], "back further than CloudWatch Logs keeps"),
    ],
)
def test_bad_deploy_and_ops_options_exit_2_before_reaching_any_stage(
    tmp_path: Path, command: list[str], said: str
) -> None:
    """Refused while parsing: no emulator started, no credentials read (HOME has none, none set)."""
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(REPO), *command],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AWS_EC2_METADATA_DISABLED": "true"},
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert said in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
