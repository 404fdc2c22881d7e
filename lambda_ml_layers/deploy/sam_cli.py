"""The SAM CLI, reached one way: `sam validate --lint` and `sam deploy` for a stage."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..config.stages import SAMCONFIG, Stage
from ..core.command_runner import CommandResult, call, find_tool
from ..core.errors import DeployGateError
from ..local.moto_server import DUMMY_CREDENTIALS


def find_sam(root: Path) -> Path:
    """$SAM_CLI, else the project's .venv-sam/bin/sam (scripts/bootstrap.py makes it), else PATH."""
    return find_tool(
        "The AWS SAM CLI",
        "sam",
        "SAM_CLI",
        root / ".venv-sam" / "bin" / "sam",
        "the AWS SAM CLI validates and deploys the template (nothing was uploaded)",
        "`python3 scripts/bootstrap.py` installs it from requirements/sam.txt into .venv-sam, "
        "or point SAM_CLI at a `sam` executable.",
    )


def validate(sam: Path, template: Path, echo: Callable[[str], None]) -> None:
    """`sam validate --lint`: SAM's translator and cfn-lint, offline (credentials must exist, not be valid)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(DUMMY_CREDENTIALS)
    env["SAM_CLI_TELEMETRY"] = "0"
    call(
        [str(sam), "validate", "--lint", "--template-file", str(template)],
        env=env,
        echo=echo,
        error=DeployGateError,
        what=f"`sam validate --lint` of {template}",
    )


def deploy_command(
    sam: Path,
    root: Path,
    stage: Stage,
    template: Path,
    parameters: dict[str, str],
    confirm: bool,
    execute: bool,
) -> list[str]:
    """`sam deploy` with the stage's samconfig section; parameters replace samconfig's overrides
    (SAM does not merge them), so they carry the stage's own as well."""
    command = [
        str(sam),
        "deploy",
        "--template-file",
        str(template),
        "--config-file",
        str((root / SAMCONFIG).resolve()),
        "--config-env",
        stage.name,
        "--stack-name",
        stage.stack_name,
        "--region",
        stage.region,
        "--no-fail-on-empty-changeset",
        "--confirm-changeset" if confirm else "--no-confirm-changeset",
    ]
    if parameters:
        command += ["--parameter-overrides", *(f"{key}={value}" for key, value in parameters.items())]
    if not execute:
        command.append("--no-execute-changeset")
    return command


def run_deploy(
    command: list[str], env: dict[str, str], cwd: Path, echo: Callable[[str], None], terminal: bool
) -> CommandResult:
    """Run sam deploy; the caller reads the stack to learn what happened (no exception here)."""
    return call(command, cwd=cwd, env=env, echo=echo, terminal=terminal, error=None, what="sam deploy")
