"""The rule behind `nox -s layer_tests`: a deployed layer without a zip fails; only a runtime
nobody deploys may skip (and in CI, not the default runtime)."""

from __future__ import annotations

from pathlib import Path

from lambda_ml_layers.checks.layer_test_plan import arch_runs_here, deployed_on, plan_layer_tests
from lambda_ml_layers.config.template import TemplateLayer
from lambda_ml_layers.core.paths import BuildPaths

PATHS = BuildPaths.of(Path("/repo"))
ORDER = ["core-data-science", "ml-libraries", "aws-utilities"]
DEPLOYED = {"x86_64": set(ORDER)}


def plan(built: dict[str, set[str]], deployed: dict[str, set[str]] = DEPLOYED, **kwargs: object):  # type: ignore[no-untyped-def]
    selected = kwargs.pop("selected", {"x86_64": None})
    return plan_layer_tests("python3.12", ORDER, deployed, built, selected, PATHS, **kwargs)  # type: ignore[arg-type]


def test_everything_built_is_tested_bases_first() -> None:
    result = plan({"x86_64": set(ORDER)})
    assert result.runs == tuple(("x86_64", name) for name in ORDER)
    assert result.missing == () and result.skip is None


def test_a_deployed_layer_without_its_zip_is_a_failure_naming_it_and_the_command() -> None:
    result = plan({"x86_64": {"core-data-science", "ml-libraries"}})
    assert result.runs == (("x86_64", "core-data-science"), ("x86_64", "ml-libraries"))
    [missing] = result.missing
    assert missing.startswith("aws-utilities: infra/template.yaml deploys it on python3.12/x86_64")
    assert f"{PATHS.output_dir('python3.12', 'x86_64') / 'aws-utilities.zip'} is missing" in missing
    assert "`inv build-layers --runtime python3.12 --arch x86_64`" in missing
    assert result.skip is None


def test_nothing_built_for_a_deployed_runtime_fails_every_layer_instead_of_skipping() -> None:
    result = plan({})
    assert result.runs == () and result.skip is None
    assert [m.split(":")[0] for m in result.missing] == ORDER


def test_a_runtime_nobody_deploys_skips_saying_why() -> None:
    result = plan({}, deployed={})
    assert result.missing == ()
    assert result.skip is not None
    assert "infra/template.yaml deploys no layer on it and no layer zip is built for it" in result.skip


def test_in_ci_the_default_runtime_must_be_built_even_if_the_template_deploys_nothing() -> None:
    result = plan({}, deployed={}, required_when_nothing_deployed={"x86_64": {"core-data-science"}})
    assert result.skip is None
    assert [m.split(":")[0] for m in result.missing] == ["core-data-science"]


def test_built_layers_nobody_deploys_are_still_tested() -> None:
    result = plan({"x86_64": {"aws-utilities"}}, deployed={})
    assert result.runs == (("x86_64", "aws-utilities"),)


def test_an_arch_not_asked_for_is_a_note_naming_the_command_that_tests_it() -> None:
    result = plan({"arm64": set(ORDER)}, deployed={"arm64": set(ORDER)})
    assert result.runs == () and result.missing == () and result.skip is None
    assert "arm64 layers are tested by `nox -s layer_tests-3.12 -- --arch arm64`; not tested here" in result.notes[0]


def test_an_arch_whose_code_cannot_run_here_is_a_note_with_the_reason_not_a_pass() -> None:
    why = "no arm64 Python 3.12 to run under qemu here"
    result = plan({"arm64": set(ORDER)}, deployed={"arm64": set(ORDER)}, selected={"arm64": why})
    assert result.runs == () and result.missing == () and result.skip is None
    assert f"arm64 layers cannot run here ({why}); not tested" in result.notes[0]


def test_arm64_asked_for_and_runnable_under_qemu_is_tested_and_its_missing_zips_fail() -> None:
    result = plan({"arm64": {"core-data-science"}}, deployed={"arm64": set(ORDER)}, selected={"arm64": None})
    assert result.runs == (("arm64", "core-data-science"),)
    assert [m.split(":")[0] for m in result.missing] == ["ml-libraries", "aws-utilities"]


def test_arm64_runs_here_only_with_an_arm64_interpreter_of_that_version() -> None:
    assert arch_runs_here("python3.12", "x86_64", "x86_64") is None
    why = arch_runs_here("python3.12", "arm64", "x86_64") or ""
    assert "no arm64 Python 3.12 to run under qemu here" in why
    # What was looked for, each place named: a user should not have to search again.
    assert all(place in why for place in ("3.11 (bookworm) and 3.13 (trixie)", "PyPI", "portable-python"))


def test_deployed_on_reads_runtime_and_arch_from_the_template_layers() -> None:
    layers = [
        TemplateLayer("Core", "core", "../x/core.zip", ("python3.12",), ("x86_64",)),
        TemplateLayer("Old", "old", "../x/old.zip", ("python3.11",), ("arm64",)),
    ]
    assert deployed_on(layers, "python3.12") == {"x86_64": {"core"}}
    assert deployed_on(layers, "python3.13") == {}
