"""The pre-deploy security gate (lambda_ml_layers.security_scan).

Parsing runs on reports captured from checkov 3.3.30 (tests/unit/checkov_reports, null
fields dropped). The real runs (a few seconds each) happen once per module: the project's
template, and one planted template with a failed check and a reasonless skip.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lambda_ml_layers.core.errors import SecurityScanError
from lambda_ml_layers.deploy.security_scan import (
    NO_REASON,
    Finding,
    ScanResult,
    check_template_security,
    checkov_environment,
    find_checkov,
    gate_problems,
    parse_checkov_json,
)
from tests.project_factory import REPO

REPORTS = Path(__file__).parent / "checkov_reports"
TEMPLATE = REPO / "infra" / "template.yaml"

PLANTED = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  PlainTopic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: planted-plain
  QuietTopic:
    Type: AWS::SNS::Topic
    Metadata:
      checkov:
        skip:
          - id: CKV_AWS_26
    Properties:
      TopicName: planted-quiet
  ExplainedTopic:
    Type: AWS::SNS::Topic
    Metadata:
      checkov:
        skip:
          - id: CKV_AWS_26
            comment: carries alarm notifications only
    Properties:
      TopicName: planted-explained
"""


def report(name: str) -> str:
    return (REPORTS / f"{name}.json").read_text()


# --- parsing (pure) ----------------------------------------------------------------------


def test_parses_failed_and_skipped_checks() -> None:
    result = parse_checkov_json(report("failed_and_skipped"))
    assert result.passed == 0 and result.resource_count == 3
    assert result.failed == (
        Finding("CKV_AWS_26", "Ensure all data stored in the SNS topic is encrypted", "AWS::SNS::Topic.Topic", "", 3),
    )
    assert [(s.logical_id, s.reason_or_guideline) for s in result.skipped] == [
        ("Quiet", NO_REASON),
        ("Explained", "alarm notifications only"),
    ]
    assert [s.logical_id for s in result.unexplained_skips] == ["Quiet"]


def test_parses_a_list_of_framework_reports() -> None:
    result = parse_checkov_json(report("two_frameworks"))
    assert result.passed == 3 and result.resource_count == 2
    assert {f.check_id for f in result.failed} == {
        "CKV_AWS_18",
        "CKV_AWS_21",
        "CKV_AWS_53",
        "CKV_AWS_54",
        "CKV_AWS_55",
        "CKV_AWS_56",
        "CKV_SECRET_2",
    }


def test_a_bare_summary_means_nothing_was_scanned() -> None:
    result = parse_checkov_json(report("nothing_scanned"))
    assert result == ScanResult(passed=0, failed=(), skipped=())
    assert gate_problems(result, Path("t.yaml")) == [
        "checkov found no CloudFormation resources in t.yaml, so nothing was scanned"
    ]


def test_a_template_checkov_cannot_parse_is_not_a_pass() -> None:
    result = parse_checkov_json(report("parsing_error"))
    assert result.parsing_errors == ("broken.yaml",) and not result.failed
    assert gate_problems(result, Path("broken.yaml")) == [
        "broken.yaml: checkov could not parse it, so it was not scanned"
    ]


@pytest.mark.parametrize("text", ["", "Traceback (most recent call last):", "[1]", '{"check_type": "x"}'])
def test_output_that_is_not_a_report_is_an_error(text: str) -> None:
    with pytest.raises(SecurityScanError):
        parse_checkov_json(text)


@pytest.mark.parametrize("comment", [NO_REASON, "", "   "])
def test_a_skip_without_a_reason_is_a_problem(comment: str) -> None:
    skip = Finding("CKV_AWS_117", "Ensure that AWS Lambda function is configured inside a VPC", "AWS::X.Fn", comment, 9)
    problems = gate_problems(ScanResult(1, (), (skip,), resource_count=1), Path("t.yaml"))
    assert problems == [
        "CKV_AWS_117 Ensure that AWS Lambda function is configured inside a VPC on AWS::X.Fn (line 9): "
        "skipped without a reason (add a comment to the skip)"
    ]


# --- finding checkov and running it offline ---------------------------------------------------


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_find_checkov_order(tmp_path: Path) -> None:
    on_path = executable(tmp_path / "bin" / "checkov")
    venv = tmp_path / "root" / ".venv-checkov" / "bin" / "checkov"
    root = tmp_path / "root"
    env = {"PATH": str(on_path.parent)}
    assert find_checkov(root, env) == on_path
    executable(venv)
    assert find_checkov(root, env) == venv
    other = executable(tmp_path / "elsewhere" / "checkov")
    assert find_checkov(root, {**env, "CHECKOV": str(other)}) == other


def test_missing_checkov_names_where_it_looked_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(SecurityScanError) as caught:
        find_checkov(tmp_path, {"PATH": str(tmp_path)})
    message = str(caught.value)
    assert str(tmp_path / ".venv-checkov" / "bin" / "checkov") in message
    assert "checkov on PATH" in message and "python3 scripts/bootstrap.py" in message
    assert caught.value.exit_code == 11


def test_a_wrong_checkov_override_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SecurityScanError, match=r"\$CHECKOV is .*not an executable"):
        find_checkov(tmp_path, {"CHECKOV": str(tmp_path / "nope"), "PATH": ""})


def test_environment_is_offline_and_cannot_skip_checks(tmp_path: Path) -> None:
    env = checkov_environment(
        {"PATH": "/bin", "BC_API_KEY": "k", "CKV_SKIP_CHECK": "CKV_AWS_26", "PRISMA_API_URL": "u", "HOME": "/h"},
        tmp_path,
    )
    assert env["PATH"] == "/bin" and env["HOME"] == str(tmp_path)
    assert "BC_API_KEY" not in env and "CKV_SKIP_CHECK" not in env and "PRISMA_API_URL" not in env
    assert env["BC_SKIP_MAPPING"] == "TRUE" and env["CKV_SKIP_PACKAGE_UPDATE_CHECK"] == "true"


# --- real checkov runs ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkov() -> Path:
    try:
        return find_checkov(REPO)
    except SecurityScanError as exc:
        if os.environ.get("CI"):
            raise  # in CI the gate must really run
        pytest.skip(f"checkov is not installed (run `python3 scripts/bootstrap.py`); CI is unset: {exc}")


@pytest.fixture(scope="module")
def planted_error(checkov: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("planted")
    template = folder / "template.yaml"
    template.write_text(PLANTED)
    # Everything a caller could use to skip checks behind the template's back; none may work.
    home = folder / "home"
    home.mkdir()
    (home / ".checkov.yaml").write_text("skip-check:\n  - CKV_AWS_26\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CKV_SKIP_CHECK", "CKV_AWS_26")
        patch.setenv("HOME", str(home))
        patch.chdir(home)
        with pytest.raises(SecurityScanError) as caught:
            check_template_security(template, checkov)
    return str(caught.value)


def test_the_project_template_passes(checkov: Path) -> None:
    result = check_template_security(TEMPLATE, checkov)
    assert result.failed == () and result.unexplained_skips == ()
    assert result.passed > 0 and result.resource_count > 0
    assert result.summary() == f"checkov: {result.passed} passed, {len(result.skipped)} skipped with reasons"


def test_a_failed_check_names_the_check_and_resource(planted_error: str) -> None:
    check = "CKV_AWS_26 Ensure all data stored in the SNS topic is encrypted"
    assert f"{check} on AWS::SNS::Topic.PlainTopic (line 3)" in planted_error
    assert "checkov:\n      skip:" in planted_error  # the fix
    assert "ExplainedTopic" not in planted_error


def test_a_skip_without_a_reason_is_refused(planted_error: str) -> None:
    assert "on AWS::SNS::Topic.QuietTopic (line 7): skipped without a reason" in planted_error
