"""The one stage reader: infra/samconfig.toml (SAM's per-stage settings) plus infra/stages.toml (ours),
and where a stage's alarms go: `alarms_to`, subscribed by the template to the stage's SNS alarm topic
(AlarmProtocol / AlarmEndpoint), and refused when prod's go nowhere."""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import ConfigError, DeployGateError
from ..core.toml_files import read_toml

SAMCONFIG = Path("infra/samconfig.toml")
STAGES = Path("infra/stages.toml")
SMOKE_MODES = ("invoke", "sandbox")
_STAGE_KEYS = {"emulated", "account_id", "smoke", "alarms_to"}
_EMAIL = re.compile(r"[^@\s/:]+@[^@\s/:]+\.[^@\s/:]+")
_HTTPS = re.compile(r"https://[^\s/]+\.[^\s]+")


@dataclass(frozen=True)
class Stage:
    name: str
    stack_name: str
    region: str
    confirm_changeset: bool
    parameters: dict[str, str]  # samconfig's parameter_overrides, parsed
    emulated: bool = False
    account_id: str | None = None
    smoke: str = "invoke"
    alarms_to: str | None = None  # an e-mail address or an https:// endpoint; None: alarms go nowhere


def alarm_subscription(alarms_to: str | None) -> tuple[str, str]:
    """(SNS protocol, endpoint) for the template's AlarmProtocol/AlarmEndpoint; ("none", "none") when
    unset (sam deploy refuses an empty parameter value)."""
    if alarms_to is None:
        return "none", "none"
    return ("https" if alarms_to.startswith("https://") else "email"), alarms_to


def alarms_to_problem(value: object, where: str) -> str | None:
    if isinstance(value, str) and (_EMAIL.fullmatch(value) or _HTTPS.fullmatch(value)):
        return None
    return (
        f'{where}: alarms_to must be an e-mail address ("ops@example.com") or an https:// endpoint '
        f'("https://alerts.example.com/hook"), not {value!r}.'
    )


def parse_parameter_overrides(text: str, where: str) -> dict[str, str]:
    """`Key=Value Other="a b"` as SAM writes parameter_overrides."""
    parameters = {}
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ConfigError(f"{where}: parameter_overrides {text!r} cannot be parsed ({exc}).") from None
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise ConfigError(f"{where}: parameter_overrides entry {word!r} is not Key=Value.")
        parameters[key] = value
    return parameters


def stage_names(root: Path) -> list[str]:
    return [name for name in read_toml(root / SAMCONFIG) if name not in ("default", "version")]


def load_stage(root: Path, name: str) -> Stage:
    """The stage `name`; an unknown one is an error listing the known stages."""
    samconfig = read_toml(root / SAMCONFIG)
    known = stage_names(root)
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Perhaps you meant {close[0]!r}?" if close else ""
        raise ConfigError(f"Unknown stage {name!r}: {root / SAMCONFIG} defines {', '.join(known)}.{hint}")
    section = samconfig[name]
    where = f"{root / SAMCONFIG} [{name}]"
    deploy = section.get("deploy", {}).get("parameters", {})
    stack_name = section.get("global", {}).get("parameters", {}).get("stack_name") or deploy.get("stack_name")
    region = deploy.get("region") or section.get("global", {}).get("parameters", {}).get("region")
    problems = []
    if not isinstance(stack_name, str) or not stack_name:
        problems.append(f"{where}: no stack_name (in [{name}.global.parameters] or [{name}.deploy.parameters]).")
    if not isinstance(region, str) or not region:
        problems.append(f"{where}: no region in [{name}.deploy.parameters].")
    ours = read_toml(root / STAGES).get(name, {}) if (root / STAGES).exists() else {}
    ours_where = f"{root / STAGES} [{name}]"
    for key in sorted(set(ours) - _STAGE_KEYS):
        close = difflib.get_close_matches(key, sorted(_STAGE_KEYS), n=1)
        hint = f" Perhaps you meant {close[0]!r}?" if close else f" Known keys: {', '.join(sorted(_STAGE_KEYS))}."
        problems.append(f"{ours_where}: unknown key {key!r}.{hint}")
    account_id = ours.get("account_id")
    if account_id is not None and not (isinstance(account_id, str) and account_id.isdigit() and len(account_id) == 12):
        problems.append(f'{ours_where}: account_id must be a 12-digit string like "123456789012", not {account_id!r}.')
    smoke = ours.get("smoke", "invoke")
    if smoke not in SMOKE_MODES:
        problems.append(f"{ours_where}: smoke must be one of {', '.join(SMOKE_MODES)}, not {smoke!r}.")
    emulated = ours.get("emulated", False)
    if not isinstance(emulated, bool):
        problems.append(f"{ours_where}: emulated must be true or false, not {emulated!r}.")
    alarms_to = ours.get("alarms_to")
    if alarms_to is not None and (problem := alarms_to_problem(alarms_to, ours_where)):
        problems.append(problem)
    if problems:
        raise ConfigError("\n".join(problems))
    return Stage(
        name=name,
        stack_name=str(stack_name),
        region=str(region),
        confirm_changeset=bool(deploy.get("confirm_changeset", False)),
        parameters=parse_parameter_overrides(str(deploy.get("parameter_overrides", "")), where),
        emulated=emulated,
        account_id=account_id,
        smoke=smoke,
        alarms_to=alarms_to,
    )


# Stages whose alarms must reach someone before they may be deployed.
ALARMS_REQUIRED = ("prod",)


def alarm_parameters(stage: Stage) -> dict[str, str]:
    """The template parameters that subscribe `alarms_to` to the alarm topic."""
    protocol, endpoint = alarm_subscription(stage.alarms_to)
    return {"AlarmProtocol": protocol, "AlarmEndpoint": endpoint}


def alarm_destination(stage: Stage) -> str:
    """One line for the deploy's output: where the alarms go."""
    protocol, endpoint = alarm_subscription(stage.alarms_to)
    topic = f"SNS topic lambda-ml-layers-{stage.parameters.get('Stage', stage.name)}-alarms"
    if protocol == "none":
        return f"Alarms go nowhere: {topic} has no subscriber (set alarms_to in {STAGES} [{stage.name}])."
    where = "e-mail to" if protocol == "email" else "HTTPS POST to"
    return f"Alarms go to: {where} {endpoint} (subscribed to {topic})."


def refuse_unrouted_alarms(stage: Stage) -> None:
    """A stage in ALARMS_REQUIRED must name where its alarms go; checked before anything else."""
    if stage.name in ALARMS_REQUIRED and stage.alarms_to is None:
        raise DeployGateError(
            f"Stage {stage.name!r} has nowhere to send its alarms: an alarm would fire and nobody would know. "
            f'Fix: set alarms_to in {STAGES} [{stage.name}] to an e-mail address (alarms_to = "ops@example.com") '
            'or an https:// endpoint (alarms_to = "https://alerts.example.com/hook"). Nothing was uploaded.'
        )
