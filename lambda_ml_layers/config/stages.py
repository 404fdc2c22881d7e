"""The one stage reader: infra/samconfig.toml (SAM's per-stage settings) plus infra/stages.toml (ours),
and where a stage's alarms go: `alarms_to`, subscribed by the template to the stage's SNS alarm topic
(AlarmProtocol / AlarmEndpoint), and refused when prod's go nowhere.

Where a stage runs is never a default: each stage's section of stages.toml must say `emulated = true`
(the local emulator, dummy credentials) or `emulated = false` (a real AWS account). A missing file,
section or line is an error, so a lost line cannot turn the emulator's stage into a real account's.
Stage and stack names are checked here, before any of them becomes a path under build/ or a stack.

A stage's target (Python runtime and architecture) is the template's PythonRuntime and Architecture
parameters as its parameter_overrides set them (their Defaults otherwise): `stage_target`."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, DeployGateError
from ..core.runtimes import ARCHES, RUNTIMES
from ..core.suggestions import perhaps_you_meant
from ..core.toml_files import read_toml
from .template import ARCH_PARAMETER, RUNTIME_PARAMETER, TEMPLATE, load_template, specs_of, template_layers

SAMCONFIG = Path("infra/samconfig.toml")
STAGES = Path("infra/stages.toml")
SMOKE_MODES = ("invoke", "sandbox")
# The stage every doc and message sends people to for a rehearsal without an account.
EMULATED_ONLY = ("local",)
_STAGE_KEYS = {"emulated", "account_id", "smoke", "alarms_to"}
_SAMCONFIG_NOT_STAGES = ("default", "version")
_EMAIL = re.compile(r"[^@\s/:]+@[^@\s/:]+\.[^@\s/:]+")
_HTTPS = re.compile(r"https://[^\s/]+\.[^\s]+")
# A stage name becomes a folder (build/releases/<stage>, build/deploy/<stage>) and part of resource
# names; "../x" or "a/b" would reach outside build/.
_STAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")
# CloudFormation's own rule; the stack name is also the S3 prefix of the release records.
_STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
_EMULATED_FIX = (
    "say where it runs: `emulated = true` (the local AWS emulator, no credentials read) or "
    "`emulated = false` (a real AWS account); there is no default"
)


@dataclass(frozen=True)
class Stage:
    name: str
    stack_name: str
    region: str
    confirm_changeset: bool
    parameters: dict[str, str]  # samconfig's parameter_overrides, parsed
    emulated: bool  # the local emulator; never a default (see the module's docstring)
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


def stage_name_problem(name: object, where: str) -> str | None:
    """Why `name` cannot be a stage name (None: it can)."""
    if isinstance(name, str) and _STAGE_NAME.fullmatch(name):
        return None
    return (
        f"{where}: stage name {name!r} is not allowed: a stage name has only letters, digits and '-', "
        "starts with a letter or digit and has at most 64 characters (it becomes a folder under build/ and "
        "part of the stack's resource names). Fix: rename the stage."
    )


def _table(value: object, where: str, shown: str) -> dict[str, Any]:
    """`value` as a TOML table; a missing one is empty; anything else is a ConfigError naming it."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(
            f"{where}: {shown} must be a table ([{shown}] with its keys), not {value!r}. "
            f"Fix: write it as SAM's samconfig format does (see {SAMCONFIG} for the other stages)."
        )
    return value


def stage_names(root: Path) -> list[str]:
    """The stages of samconfig.toml, each name checked before anything uses it."""
    samconfig = read_toml(root / SAMCONFIG)
    names = [name for name in samconfig if name not in _SAMCONFIG_NOT_STAGES]
    problems = [p for name in names if (p := stage_name_problem(name, str(root / SAMCONFIG)))]
    if problems:
        raise ConfigError("\n".join(problems))
    return names


def _samconfig_section(root: Path, name: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(global parameters, deploy parameters, where) of stage `name` in samconfig.toml."""
    samconfig = read_toml(root / SAMCONFIG)
    where = f"{root / SAMCONFIG} [{name}]"
    section = _table(samconfig[name], str(root / SAMCONFIG), name)
    tables = []
    for command in ("global", "deploy"):
        table = _table(section.get(command), where, f"{name}.{command}")
        tables.append(_table(table.get("parameters"), where, f"{name}.{command}.parameters"))
    return tables[0], tables[1], where


def _stages_toml(root: Path, known: list[str]) -> dict[str, Any]:
    """infra/stages.toml, its sections checked: each a table named after a stage of samconfig.toml."""
    path = root / STAGES
    if not path.exists():
        raise ConfigError(
            f"{path}: file is missing. It says for each stage of {SAMCONFIG} whether it runs on the local "
            "emulator or in a real AWS account, and without it no stage can be told apart. Fix: restore it "
            f"(git checkout -- {STAGES}), or create it with a section per stage that "
            f"{_EMULATED_FIX} (for example [local] emulated = true, [dev] emulated = false)."
        )
    ours = read_toml(path)
    problems = []
    for name, section in ours.items():
        if problem := stage_name_problem(name, str(path)):
            problems.append(problem)
        elif not isinstance(section, dict):
            problems.append(
                f"{path}: {name} = {section!r} must be a table: [{name}] on its own line, then its keys "
                "(emulated = true or false, ...)."
            )
        elif name not in known:
            hint = perhaps_you_meant(name, known, show="[{}]".format)
            problems.append(
                f"{path}: [{name}] is no stage of {root / SAMCONFIG} ({', '.join(known)}).{hint} "
                f"Fix: rename the section, or add the stage to {SAMCONFIG}."
            )
    if problems:
        raise ConfigError("\n".join(problems))
    return ours


def _text(value: object, where: str, key: str) -> str | None:
    """A string setting, or None when unset or empty; any other type is refused."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a string, not {value!r}.")
    return value


def _parameter_overrides(value: object, where: str) -> dict[str, str]:
    """SAM accepts parameter_overrides as one string or a list of Key=Value strings."""
    if value is None:
        return {}
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        value = " ".join(shlex.quote(item) for item in value)
    if not isinstance(value, str):
        raise ConfigError(
            f'{where}: parameter_overrides must be a string like "Stage=dev" (or a list of such strings), '
            f"not {value!r}."
        )
    return parse_parameter_overrides(value, where)


def load_stage(root: Path, name: str) -> Stage:
    """The stage `name`; an unknown one is an error listing the known stages."""
    if problem := stage_name_problem(name, "--stage"):
        raise ConfigError(problem)
    known = stage_names(root)
    if name not in known:
        hint = perhaps_you_meant(name, known)
        raise ConfigError(f"Unknown stage {name!r}: {root / SAMCONFIG} defines {', '.join(known)}.{hint}")
    global_parameters, deploy, where = _samconfig_section(root, name)
    problems = []
    stack_name = _text(global_parameters.get("stack_name"), where, "stack_name") or _text(
        deploy.get("stack_name"), where, "stack_name"
    )
    region = _text(deploy.get("region"), where, "region") or _text(global_parameters.get("region"), where, "region")
    if stack_name is None:
        problems.append(f"{where}: no stack_name (in [{name}.global.parameters] or [{name}.deploy.parameters]).")
    elif not _STACK_NAME.fullmatch(stack_name):
        problems.append(
            f"{where}: stack_name {stack_name!r} is not a CloudFormation stack name: letters, digits and '-', "
            "starting with a letter, at most 128 characters. Fix: rename it."
        )
    if region is None:
        problems.append(f"{where}: no region in [{name}.deploy.parameters].")
    confirm_changeset = deploy.get("confirm_changeset", False)
    if not isinstance(confirm_changeset, bool):
        problems.append(f"{where}: confirm_changeset must be true or false, not {confirm_changeset!r}.")
    stages_toml = _stages_toml(root, known)
    ours_where = f"{root / STAGES} [{name}]"
    if name not in stages_toml:
        raise ConfigError(
            f"{root / STAGES}: no [{name}] section for stage {name!r} of {SAMCONFIG}. Fix: add one that "
            f"{_EMULATED_FIX}."
        )
    ours = stages_toml[name]
    for key in sorted(set(ours) - _STAGE_KEYS):
        hint = perhaps_you_meant(key, sorted(_STAGE_KEYS)) or f" Known keys: {', '.join(sorted(_STAGE_KEYS))}."
        problems.append(f"{ours_where}: unknown key {key!r}.{hint}")
    account_id = ours.get("account_id")
    if account_id is not None and not (isinstance(account_id, str) and account_id.isdigit() and len(account_id) == 12):
        problems.append(f'{ours_where}: account_id must be a 12-digit string like "123456789012", not {account_id!r}.')
    smoke = ours.get("smoke", "invoke")
    if smoke not in SMOKE_MODES:
        problems.append(f"{ours_where}: smoke must be one of {', '.join(SMOKE_MODES)}, not {smoke!r}.")
    emulated = ours.get("emulated")
    if emulated is None:
        problems.append(f"{ours_where}: no `emulated` line. Fix: {_EMULATED_FIX}.")
    elif not isinstance(emulated, bool):
        problems.append(f"{ours_where}: emulated must be true or false, not {emulated!r}.")
    elif not emulated and name in EMULATED_ONLY:
        problems.append(
            f"{ours_where}: emulated = false, but stage {name!r} is the local emulator's (every rehearsal "
            f"`inv deploy --stage {name}` assumes it needs no account). Fix: `emulated = true`; give a stage in a "
            "real account another name."
        )
    alarms_to = ours.get("alarms_to")
    if alarms_to is not None and (problem := alarms_to_problem(alarms_to, ours_where)):
        problems.append(problem)
    parameters: dict[str, str] = {}
    try:
        parameters = _parameter_overrides(deploy.get("parameter_overrides"), where)
    except ConfigError as exc:
        problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))
    assert stack_name is not None and region is not None and isinstance(emulated, bool)
    return Stage(
        name=name,
        stack_name=stack_name,
        region=region,
        confirm_changeset=confirm_changeset,
        parameters=parameters,
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


def _target_problems(stage: Stage, template: dict[str, Any], where: str) -> list[str]:
    """The stage's PythonRuntime/Architecture values the template or this tool cannot take."""
    problems = []
    known = {RUNTIME_PARAMETER: tuple(RUNTIMES), ARCH_PARAMETER: tuple(ARCHES)}
    for name, ours in known.items():
        if name not in stage.parameters:
            continue
        value = stage.parameters[name]
        declared = template.get("Parameters", {}).get(name)
        if not isinstance(declared, dict):
            problems.append(
                f"{where}: parameter_overrides sets {name}={value}, but {TEMPLATE} declares no {name} parameter. "
                f"Fix: remove it, or restore the parameter in {TEMPLATE}."
            )
            continue
        allowed = tuple(str(v) for v in declared.get("AllowedValues", ours))
        if value not in allowed or value not in ours:
            choices = ", ".join(v for v in allowed if v in ours)
            problems.append(f"{where}: parameter_overrides {name}={value} is not one of {choices}. Fix: use one.")
    return problems


def stage_target(
    root: Path, stage: Stage, default: tuple[str, str], template: dict[str, Any] | None = None
) -> tuple[str, str]:
    """(runtime, arch) the stage's functions and layers run on: the template's Runtime,
    Architectures and CompatibleRuntimes/Architectures with the stage's parameter_overrides
    filled in (`template`: infra/template.yaml already read). `default` when the template deploys
    nothing. One target per stage: the layers are built, and uploaded, for one Python minor and one
    architecture."""
    where = f"{root / SAMCONFIG} [{stage.name}.deploy.parameters]"
    path = root / TEMPLATE
    template = load_template(path) if template is None else template
    problems = _target_problems(stage, template, where)
    if problems:
        raise ConfigError("\n".join(problems))
    targets = {(spec.runtime, spec.arch) for spec in specs_of(template, path, stage.parameters)}
    for layer in template_layers(template, stage.parameters).values():
        targets |= {(str(runtime), str(arch)) for runtime in layer.runtimes for arch in layer.arches}
    if not targets:
        return default
    shown = ", ".join(f"{runtime}/{arch}" for runtime, arch in sorted(targets))
    if len(targets) > 1:
        raise ConfigError(
            f"{path}: stage {stage.name!r} would run on {shown}, but its layers are built for one runtime and one "
            f"architecture. Fix: give every function and layer Runtime: !Ref {RUNTIME_PARAMETER} and "
            f"Architectures: [!Ref {ARCH_PARAMETER}] (CompatibleRuntimes/CompatibleArchitectures for layers), and "
            f"choose the stage's in {where}."
        )
    ((runtime, arch),) = targets
    if runtime not in RUNTIMES or arch not in ARCHES:
        raise ConfigError(
            f"{path}: stage {stage.name!r} would run on {shown}, which this tool does not build (runtimes "
            f"{', '.join(RUNTIMES)}; architectures {', '.join(ARCHES)}). Fix: set {RUNTIME_PARAMETER} and "
            f"{ARCH_PARAMETER} in {where}."
        )
    return runtime, arch


def stage_targets(root: Path, default: tuple[str, str]) -> dict[tuple[str, str], list[str]]:
    """Every (runtime, arch) some stage of samconfig.toml deploys, with the stages that need it."""
    needed: dict[tuple[str, str], list[str]] = {}
    template = load_template(root / TEMPLATE)
    for name in stage_names(root):
        needed.setdefault(stage_target(root, load_stage(root, name), default, template), []).append(name)
    return needed
