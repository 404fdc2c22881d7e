"""The gates a build must pass, wired to the project: before building, a function must not
re-declare what its layers provide; after building, every layer must fit its budget and every
function in infra/template.yaml must fit Lambda's limits with its layers. The rules themselves
are pure and live in size_gates.py (sizes) and config/template.py (what the template declares)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config.locks import LayerLock
from ..config.project import ProjectConfig, base_layers_of
from ..config.stages import SAMCONFIG, stage_targets
from ..config.template import (
    TEMPLATE,
    function_specs,
    load_template,
    target_parameters,
    template_functions,
    template_layer_failures,
    unknown_layer_problems,
)
from ..core.errors import ConfigError, LockError
from ..core.notices import Notice
from .artifacts import LayerBuild
from .function_code import function_code_problems
from .function_deps import check_function_requirements
from .layer_contents import load_locks
from .shared_objects import NOT_STRIPPED
from .size_gates import FunctionTotal, LayerFacts, function_failures, function_totals, layer_budget_failures


def needed_targets(root: Path, project: ProjectConfig) -> dict[tuple[str, str], list[str]]:
    """(runtime, arch) -> the stages that deploy on it; the project's default target alone (needed
    by no stage) when there are no stages or no template to read them from."""
    default = (project.default_runtime, project.default_arch)
    if not (root / SAMCONFIG).exists() or not (root / TEMPLATE).exists():
        return {default: []}
    return stage_targets(root, default)


@dataclass
class GateOutcome:
    failures: list[str] = field(default_factory=list)  # every offender, each naming its fix
    totals: list[FunctionTotal] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)  # what could not be checked, and why


def check_function_packages(project: ProjectConfig) -> None:
    """Before building: every layer the template names has a layer folder, and a function's own
    requirements do not repeat what its layers provide."""
    template = project.root / TEMPLATE
    if not template.exists():
        return
    known = set(project.layer_names)
    problems = unknown_layer_problems(template, project.layer_names)
    for spec in function_specs(template):
        missing_code = function_code_problems(spec.name, spec.code_dir, spec.handler, template)
        if missing_code:
            problems.extend(missing_code)
            continue
        locks = {name: project.layer(name).lock for name in spec.layers if name in known}
        try:
            check_function_requirements(spec.name, spec.code_dir, locks)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))


def layer_facts(build: LayerBuild, project: ProjectConfig) -> LayerFacts:
    return LayerFacts(
        name=build.name,
        unzipped_bytes=build.unzipped_bytes,
        budget_bytes=build.budget_bytes,
        packages=build.packages,
        package_bytes=build.package_bytes,
        runtimes=(build.runtime,),
        arch=build.arch,
        base_layers=tuple(base.name for base in base_layers_of(project, project.layer(build.name))),
        not_stripped="; ".join(
            warning.removeprefix(NOT_STRIPPED)
            for step in build.steps
            if step.get("step") == "shared-objects"
            for warning in step.get("warnings", [])
            if warning.startswith(NOT_STRIPPED)
        ),
    )


def locks_at_hand(project: ProjectConfig, locks: dict[str, LayerLock]) -> dict[str, LayerLock]:
    """This build's locks plus every other layer's that reads cleanly, to recognise which
    earlier-published zips still match their inputs."""
    found = dict(locks)
    for layer in project.layers:
        if layer.name not in found:
            try:
                found.update(load_locks(project, [layer]))
            except LockError:
                continue
    return found


def apply_gates(
    project: ProjectConfig,
    results: dict[str, LayerBuild],
    published: dict[str, LayerBuild],
    runtime: str,
    arch: str,
    output_dir: Path,
    headroom: int,
) -> GateOutcome:
    """Every gate at once, on this build's layers plus the still-valid published ones it did not
    rebuild (`published`). Writes nothing: publishing is for the caller, once this passes."""
    known = {name: layer_facts(build, project) for name, build in {**published, **results}.items()}
    outcome = GateOutcome(failures=layer_budget_failures([known[name] for name in results], known))
    template = project.root / TEMPLATE
    needed = needed_targets(project.root, project) if template.exists() else {}
    # The template on this build's target, as a stage deploying it there sets it (PythonRuntime/Architecture).
    deployed_here = (runtime, arch) in needed
    target = target_parameters(load_template(template), runtime, arch) if deployed_here else {}
    functions = template_functions(template, target) if deployed_here else []
    if needed and not deployed_here:
        # Layers for a target no stage deploys on are fine on their own; no function uses them.
        deployed = ", ".join(f"{r}/{a}" for r, a in sorted(needed))
        outcome.notices.append(
            Notice.notice(
                f"No stage deploys on {runtime}/{arch} (the stages deploy on {deployed}), so only the layer "
                f"budgets were checked. Build for {deployed.split(', ')[0]} to check the functions, or put a "
                f"stage on {runtime}/{arch} (PythonRuntime and Architecture in {SAMCONFIG})."
            )
        )
    elif functions:
        outcome.totals = function_totals(functions, known, headroom)
        outcome.failures += function_failures(functions, known, headroom)
        outcome.failures += template_layer_failures(template, runtime, arch, output_dir, target)
    else:
        outcome.notices.append(
            Notice.notice(f"{TEMPLATE} not found: only the layer budgets were checked, no function totals.")
        )
    return outcome
