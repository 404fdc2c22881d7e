"""A release as recorded after a verified deploy: git, caller, layers, functions, template."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..config.template import parse_template
from ..core.command_runner import call
from ..core.errors import DeployFailed
from ..core.paths import BuildPaths
from .deployed_state import StackState
from .release_history import Release, template_sha256
from .stage_context import StageContext
from .stage_session import StageSession


def _git(root: Path) -> tuple[str, bool]:
    head = call(["git", "rev-parse", "HEAD"], cwd=root, error=None)
    status = call(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, error=None)
    commit = head.output.strip() if head.returncode == 0 else "unknown (not a git checkout)"
    return commit, bool(status.output.strip()) if status.returncode == 0 else True


def build_report(paths: BuildPaths, runtime: str, arch: str) -> dict[str, Any] | None:
    """The report of the build the deploy gates just made (the stage's runtime and arch), stored
    with the release for `inv size-report`; a release is recorded even without it."""
    try:
        data = json.loads(paths.report(runtime, arch).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def deployed_template(session: StageSession) -> dict[str, Any]:
    body = session.client("cloudformation").get_template(StackName=session.stage.stack_name, TemplateStage="Original")[
        "TemplateBody"
    ]
    parsed = parse_template(body) if isinstance(body, str) else body
    if not isinstance(parsed, dict):
        raise DeployFailed(f"CloudFormation returned a template that is not a mapping for {session.stage.stack_name}.")
    return parsed


def new_release(
    ctx: StageContext,
    number: int,
    kind: str,
    state: StackState,
    layers: dict[str, dict[str, str]],
    parameters: dict[str, str],
    template: dict[str, Any],
    restores: int | None = None,
    note: str = "",
) -> Release:
    commit, dirty = _git(ctx.root)
    return Release(
        number=number,
        kind=kind,
        time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        stage=ctx.stage.name,
        stack_name=ctx.stage.stack_name,
        git_commit=commit,
        git_dirty=dirty,
        caller_account=ctx.caller.account,
        caller_arn=ctx.caller.arn,
        layers=layers,
        functions={
            logical: {
                "name": f.name,
                "version": f.version,
                "layers": list(f.layers),
                "code_sha256": str(f.configuration.get("CodeSha256", "")),
            }
            for logical, f in state.functions.items()
        },
        template_sha256=template_sha256(template),
        parameters=parameters,
        restores=restores,
        note=note,
    )
