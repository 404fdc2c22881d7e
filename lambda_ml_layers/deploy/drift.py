"""Whether a stage runs what its history says: each live alias (its version, code digest and layers)
against the latest good record. Pure: the stack is read in deployed_state.py."""

from __future__ import annotations

from .deployed_state import FunctionState, StackState
from .release_history import History, Release


def _short(arn: str) -> str:
    """A layer version ARN as name:version."""
    return ":".join(arn.split(":")[-2:])


def _running(function: FunctionState) -> str:
    code = str(function.configuration.get("CodeSha256", "?"))[:12]
    return f"version {function.version or '(no alias)'}, code {code}..., layers {[_short(a) for a in function.layers]}"


def _recorded(recorded: dict[str, object]) -> str:
    layers = recorded.get("layers")
    names = [_short(str(a)) for a in layers] if isinstance(layers, list) else "?"
    return (
        f"version {recorded.get('version', '?')}, code {str(recorded.get('code_sha256', '?'))[:12]}..., layers {names}"
    )


def drift(state: StackState, release: Release) -> list[str]:
    """Each function whose live alias is not what `release` recorded: another version (a
    configuration change publishes one), other code or other layers; a function either lacks."""
    found = []
    for logical in sorted(set(release.functions) | set(state.functions)):
        running, recorded = state.functions.get(logical), release.functions.get(logical)
        if running is None:
            found.append(
                f"{logical}: the stage runs nothing (not in the stack); its history says {_recorded(recorded or {})}"
            )
        elif recorded is None:
            found.append(f"{logical}: the stage runs {_running(running)}; its history has no such function")
        elif (
            running.version != str(recorded.get("version"))
            or list(running.layers) != recorded.get("layers")
            or (recorded.get("code_sha256") and running.configuration.get("CodeSha256") != recorded["code_sha256"])
        ):
            found.append(f"{logical}: the stage runs {_running(running)}; its history says {_recorded(recorded)}")
    return found


def drift_message(stage: str, state: StackState, history: History) -> str | None:
    """What to say when the stage does not run its latest good record (None when it does)."""
    current = history.current
    if current is None:
        if not state.functions or history.bad:  # no stack yet; or the bad records are named already
            return None
        return (
            f"Drift: stage {stage!r} runs stack {state.status} with {len(state.functions)} function(s), but its "
            f"history has no release. Fix: `inv deploy --stage {stage}` deploys and records the checkout's build."
        )
    found = drift(state, current)
    if not found:
        return None
    listed = "\n".join(f"  - {line}" for line in found)
    return (
        f"Drift: stage {stage!r} does not run its latest recorded release {current.number} ({current.kind}, "
        f"{current.time}); something changed it outside `inv deploy` and `inv rollback`, or a record was lost:\n"
        f"{listed}\nFix: `inv rollback --stage {stage} --to {current.number}` puts release {current.number} back, "
        f"or `inv deploy --stage {stage}` deploys and records the checkout's build."
    )
