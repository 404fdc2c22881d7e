"""Which layer zips `nox -s layer_tests` must test for one runtime, and what may not be skipped.

A green layer_tests run must mean the deployed layers were tested: a layer that
infra/template.yaml deploys on the session's runtime and has no zip is a failure naming the
command that builds it, never a silent pass. A runtime nobody deploys may skip, saying why;
in CI the project's default runtime (layers/defaults.toml) may not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..config.project import ProjectConfig, build_order
from ..config.template import TEMPLATE, TemplateLayer, load_template, template_layers
from ..core.paths import BuildPaths
from ..core.runtimes import ARCHES, RUNTIMES
from ..core.toolchains import find_toolchain


@dataclass(frozen=True)
class LayerTestPlan:
    runtime: str
    runs: tuple[tuple[str, str], ...]  # (arch, layer) to test, bases first
    missing: tuple[str, ...]  # failures: a layer that must be tested has no zip
    notes: tuple[str, ...]  # what is not tested, and why
    skip: str | None  # set when there is nothing to test and that is allowed


def build_command(runtime: str, arch: str) -> str:
    return f"inv build-layers --runtime {runtime} --arch {arch}"


def test_command(runtime: str, arch: str) -> str:
    return f"nox -s layer_tests-{runtime.removeprefix('python')} -- --arch {arch}"


def arch_runs_here(runtime: str, arch: str, host_machine: str) -> str | None:
    """None when `arch`'s code runs on this machine (natively, or under qemu), else why not."""
    if ARCHES[arch] == host_machine:
        return None
    toolchain = find_toolchain(RUNTIMES[runtime], arch, host_machine)
    return None if toolchain.python else "; ".join(toolchain.missing)


def target_interpreter(runtime: str, arch: str, host_python: str, host_machine: str) -> str | None:
    """What runs `arch`'s code here: `host_python` on this machine's own arch, else that arch's
    interpreter of the runtime's version under qemu; None when there is none (arch_runs_here says why)."""
    if ARCHES[arch] == host_machine:
        return host_python
    return find_toolchain(RUNTIMES[runtime], arch, host_machine).python


def deployed_on(layers: Iterable[TemplateLayer], runtime: str) -> dict[str, set[str]]:
    """arch -> layer folder names the template deploys on this runtime."""
    deployed: dict[str, set[str]] = {}
    for layer in layers:
        if runtime in layer.runtimes:
            for arch in layer.arches:
                deployed.setdefault(arch, set()).add(layer.layer_name)
    return deployed


def plan_layer_tests(
    runtime: str,
    order: list[str],
    deployed: dict[str, set[str]],
    built: dict[str, set[str]],
    selected: Mapping[str, str | None],
    paths: BuildPaths,
    required_when_nothing_deployed: dict[str, set[str]] | None = None,
) -> LayerTestPlan:
    """Pure: the zips to test, the zips that must exist and do not, and whether skipping is allowed.

    `deployed` and `built` map arch -> layer names; `selected` maps each arch this run tests to
    None, or to why its code cannot run here; `required_when_nothing_deployed` (CI: the default
    target's layers) counts as deployed when the template deploys nothing on `runtime`.
    """
    must = deployed if any(deployed.values()) else (required_when_nothing_deployed or {})
    runs: list[tuple[str, str]] = []
    missing: list[str] = []
    notes: list[str] = []
    for arch in ARCHES:
        wanted, present = must.get(arch, set()), built.get(arch, set())
        if not wanted and not present:
            continue
        where = paths.output_dir(runtime, arch)
        if arch not in selected:
            notes.append(f"{where}: {arch} layers are tested by `{test_command(runtime, arch)}`; not tested here")
            continue
        cannot = selected[arch]
        if cannot is not None:
            notes.append(f"{where}: {arch} layers cannot run here ({cannot}); not tested")
            continue
        ordered = [name for name in order if name in wanted | present]
        ordered += sorted((wanted | present) - set(order))
        for name in ordered:
            if name in present and name not in order:
                notes.append(f"{paths.output_dir(runtime, arch) / f'{name}.zip'}: no layers/{name}/; not tested")
            elif name in present:
                runs.append((arch, name))
            else:
                missing.append(
                    f"{name}: infra/template.yaml deploys it on {runtime}/{arch}, but "
                    f"{paths.output_dir(runtime, arch) / f'{name}.zip'} is missing. "
                    f"Fix: `{build_command(runtime, arch)}`, then run layer_tests again."
                )
    skip = None
    if not runs and not missing and not notes:
        skip = (
            f"nothing to test on {runtime}: infra/template.yaml deploys no layer on it and no layer zip "
            f"is built for it "
            f"(build one with `{build_command(runtime, '<arch>')}` to test it anyway)"
        )
    return LayerTestPlan(runtime, tuple(runs), tuple(missing), tuple(notes), skip)


def built_layers(paths: BuildPaths, runtime: str) -> dict[str, set[str]]:
    """arch -> layer names with a zip in the target's output_dir (paths.BuildPaths)."""
    found: dict[str, set[str]] = {}
    for arch in ARCHES:
        output_dir = paths.output_dir(runtime, arch)
        names = {p.stem for p in output_dir.glob("*.zip")} if output_dir.is_dir() else set()
        if names:
            found[arch] = names
    return found


def layer_test_plan(
    project: ProjectConfig, runtime: str, host_machine: str, ci: bool, arch: str | None = None
) -> LayerTestPlan:
    """Read the template and build/ once, then apply the rule (plan_layer_tests) to `arch`'s zips
    (None: this machine's arch)."""
    if arch is None:
        arch = next((name for name, machine in ARCHES.items() if machine == host_machine), project.default_arch)
    selected = {arch: arch_runs_here(runtime, arch, host_machine)}
    template = project.root / TEMPLATE
    deployed = deployed_on(template_layers(load_template(template)).values(), runtime) if template.exists() else {}
    order = [layer.name for layer in build_order(project)]
    required = {project.default_arch: set(order)} if ci and runtime == project.default_runtime else None
    paths = BuildPaths.of(project.root)
    return plan_layer_tests(runtime, order, deployed, built_layers(paths, runtime), selected, paths, required)
