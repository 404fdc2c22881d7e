"""`inv new-layer` and `inv new-function`: everything the checks need for a new layer or function,
written all or nothing (a failure, or Ctrl-C, leaves the project as it was)."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

from ..config.locks import LOCK_COMMAND, parse_requirements_in
from ..config.project import base_layers_of, build_order, layer_folders, load_project
from ..config.template import (
    ARCH_PARAMETER,
    RUNTIME_PARAMETER,
    TEMPLATE,
    load_template,
    parameter_value,
    parse_template,
    template_layers,
)
from ..core.command_runner import call
from ..core.errors import ConfigError, LockError, collect
from ..core.paths import BuildPaths
from ..core.suggestions import perhaps_you_meant
from .pip_runner import pip_compile
from .scaffold_rules import (
    append_to_section,
    function_files,
    function_layer_problems,
    function_lock_command,
    function_logical_id,
    function_name_problems,
    function_outputs,
    function_resources,
    import_name,
    insert_after_resource,
    layer_files,
    layer_logical_id,
    layer_name_problems,
    layer_output,
    layer_resource,
    package_problems,
    sha_parameter,
)

SHARED_LINKS = ("runtime.py", "layer_modules.json")


@dataclass(frozen=True)
class NewLayer:
    root: Path
    name: str
    packages: tuple[str, ...]
    base: tuple[str, ...] = ()


@dataclass(frozen=True)
class NewFunction:
    root: Path
    name: str
    layers: tuple[str, ...]


def lock_layers(root: Path) -> None:
    """The project's way: `nox -s lock` resolves every layer together, then locks each one."""
    call(
        [sys.executable, "-m", "nox", "-s", "lock"],
        cwd=root,
        error=LockError,
        what=f"lock the layers ({LOCK_COMMAND})",
    )


def lock_function(function_dir: Path) -> None:
    pip_compile(
        sys.executable,
        ["requirements.in"],
        "requirements.txt",
        cwd=function_dir,
        regenerate_with=function_lock_command(function_dir.name),
    )


@contextlib.contextmanager
def all_or_nothing(created: Sequence[Path], changed: Sequence[Path]) -> Iterator[None]:
    """Undo everything on any failure: remove `created` (files or folders), restore `changed`."""
    saved = {path: path.read_bytes() if path.exists() else None for path in changed}
    try:
        yield
    except BaseException:
        for path in created:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        for path, data in saved.items():
            if data is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(data)
        raise


def _same_except_added(before: dict[str, Any], after: dict[str, Any], added: dict[str, list[str]]) -> None:
    """Guard for the text edit: what was there parses exactly as before, and only `added` is new."""
    for section, keys in added.items():
        old, new = before.get(section) or {}, after.get(section) or {}
        unexpected = set(new) - set(old) - set(keys)
        if any(new.get(k) != v for k, v in old.items()) or unexpected or not set(keys) <= set(new):
            raise ConfigError(
                f"{TEMPLATE}: adding {', '.join(keys)} to {section} would change what is there already "
                "(the template's layout is not one the scaffold can edit). Add the resources by hand."
            )
    if {k: v for k, v in before.items() if k not in added} != {k: v for k, v in after.items() if k not in added}:
        raise ConfigError(f"{TEMPLATE}: the scaffold's edit changed other sections; add the resources by hand.")


def _edit_template(path: Path, edit: Callable[[str], str], added: dict[str, list[str]]) -> None:
    text = path.read_text()
    new_text = edit(text)
    _same_except_added(parse_template(text), parse_template(new_text), added)
    path.write_text(new_text)


def _function_defaults(template: dict[str, Any]) -> tuple[str, str]:
    """The functions' default runtime and arch, parameter Refs read as their Defaults."""
    defaults = template.get("Globals", {}).get("Function", {})
    arches = defaults.get("Architectures", ["x86_64"])
    runtime = parameter_value(defaults.get("Runtime", "python3.12"), template)
    return str(runtime), str(parameter_value(arches[0], template))


def _layer_target_text(template: dict[str, Any], runtime: str, arch: str) -> tuple[str, str]:
    """What the new layer declares as its runtime and arch: the stage's parameters where the
    template has them (so the layer follows a stage onto arm64), else the literal values."""
    declared = template.get("Parameters", {})
    return (
        f"!Ref {RUNTIME_PARAMETER}" if RUNTIME_PARAMETER in declared else runtime,
        f"!Ref {ARCH_PARAMETER}" if ARCH_PARAMETER in declared else arch,
    )


def new_layer(
    request: NewLayer, lock: Callable[[Path], None] = lock_layers, say: Callable[[str], None] = print
) -> None:
    root, name = request.root, request.name
    project = load_project(root)
    template_path = root / TEMPLATE
    template = load_template(template_path)
    problems = layer_name_problems(name, project.layer_names, list(template["Resources"]))
    problems += package_problems(request.packages)
    for base in request.base:
        if base not in project.layer_names:
            hint = perhaps_you_meant(base, project.layer_names)
            problems.append(
                f"--base {base!r} is no layer (layers: {', '.join(project.layer_names)}).{hint} Fix: name one of them."
            )
    collect(problems, ConfigError, f"Cannot scaffold layer {name!r}:")
    folder = root / "layers" / name
    runtime, arch = _function_defaults(template)
    built = BuildPaths.of(root).output_dir(runtime, arch) / f"{name}.zip"
    files = layer_files(name, request.packages, request.base)
    description = ", ".join(Requirement(p).name for p in request.packages)
    resource = layer_resource(
        name, description, os.path.relpath(built, template_path.parent), *_layer_target_text(template, runtime, arch)
    )
    last_layer = list(template_layers(template))[-1:]

    def edit(text: str) -> str:
        text = insert_after_resource(text, last_layer[0], resource) if last_layer else resource_at_end(text, resource)
        return append_to_section(text, "Outputs", layer_output(name))

    layers_dir = root / "layers"
    locks = [layers_dir / "resolution.txt", *(f / "requirements.txt" for f in layer_folders(layers_dir))]
    with all_or_nothing([folder], [template_path, *locks]):
        folder.mkdir()
        (folder / "layer.toml").write_text(files.layer_toml)
        (folder / "requirements.in").write_text(files.requirements_in)
        (folder / "smoke_test.py").write_text(files.smoke_test)
        load_project(root)  # the new layer.toml reads like any other
        _edit_template(
            template_path, edit, {"Resources": [layer_logical_id(name)], "Outputs": [f"{layer_logical_id(name)}Arn"]}
        )
        say(f"Locking every layer with {name} ({LOCK_COMMAND}); this resolves from PyPI.")
        try:
            lock(root)
        except LockError as exc:
            raise LockError(
                f"Cannot lock layer {name!r} with {', '.join(request.packages)}: {exc}\n"
                "Fix: check each package's name and version on PyPI (a wheel for "
                f"{runtime} {arch} must exist), or the output above. Nothing was scaffolded."
            ) from None
        if not (folder / "requirements.txt").exists():  # nox skips a session whose Python is missing, with exit 0
            raise LockError(
                f"`{LOCK_COMMAND}` wrote no layers/{name}/requirements.txt (nox skips the session when it finds no "
                f"Python {runtime.removeprefix('python')}). Fix: make that interpreter available (pyenv, "
                f"docs/troubleshooting.md), then scaffold again. Nothing was scaffolded."
            )
    say(
        f"Scaffolded layers/{name}/ (layer.toml, requirements.in, requirements.txt, smoke_test.py) and "
        f"{layer_logical_id(name)} in {TEMPLATE}."
    )
    below = [layer.name for layer in build_order(project, list(request.base))]  # bases of bases too
    say(f"Next: inv build-layers --layer {name}; inv new-function NAME --layers {','.join([*below, name])}")


def resource_at_end(text: str, block: str) -> str:
    return append_to_section(text, "Resources", block, gap=True)


def _layer_modules(layer_dirs: Sequence[Path]) -> list[str]:
    """What the handler imports: the modules of its layers' direct requirements."""
    modules: set[str] = set()
    for folder in layer_dirs:
        requirements = folder / "requirements.in"
        modules |= {import_name(str(r)) for r in parse_requirements_in(requirements.read_text(), str(requirements))}
    return sorted(modules)


def new_function(
    request: NewFunction, lock: Callable[[Path], None] = lock_function, say: Callable[[str], None] = print
) -> None:
    root, name = request.root, request.name
    project = load_project(root)
    template_path = root / TEMPLATE
    text = template_path.read_text()
    template = load_template(template_path)
    services = root / "services"
    existing = sorted(p.name for p in services.iterdir()) if services.is_dir() else []
    by_folder = {layer.layer_name: layer.logical_id for layer in template_layers(template).values()}
    known = [n for n in by_folder if n in project.layer_names]
    bases = {n: [b.name for b in base_layers_of(project, project.layer(n))] for n in known}
    problems = function_name_problems(name, existing, list(template["Resources"]))
    problems += function_layer_problems(list(request.layers), known, bases)
    collect(problems, ConfigError, f"Cannot scaffold function {name!r}:")
    # Lambda extracts layers in order: every base layer before the layers built on it.
    ordered = [layer.name for layer in build_order(project, list(request.layers))]
    layer_ids = [by_folder[n] for n in ordered]
    modules = _layer_modules([project.layer(n).folder for n in ordered])
    files = function_files(name, layer_ids, modules)
    folder = services / name
    package = folder / name
    resources = function_resources(name, layer_ids, "&function_skips" in text, "&log_group_skips" in text)
    stem = function_logical_id(name).removesuffix("Function")
    added = {
        "Parameters": [f"{stem}LayersSha256"],
        "Resources": [
            f"{stem}{kind}"
            for kind in (
                "Function",
                "LogGroup",
                "InitDurationMetric",
                "ErrorsAlarm",
                "ThrottlesAlarm",
                "DurationAlarm",
                "InitDurationAlarm",
            )
        ],
        "Outputs": [f"{stem}FunctionArn", f"{stem}AliasArn"],
    }

    def edit(text: str) -> str:
        text = append_to_section(text, "Parameters", sha_parameter(name, ordered))
        text = append_to_section(text, "Resources", resources, gap=True)
        return append_to_section(text, "Outputs", function_outputs(name))

    with all_or_nothing([folder], [template_path]):
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(files.init)
        (package / "handler.py").write_text(files.handler)
        for link in SHARED_LINKS:
            (package / link).symlink_to(Path("..", "..", "shared", link))
        (folder / "requirements.in").write_text(files.requirements_in)
        lock(folder)
        _edit_template(template_path, edit, added)
    say(
        f"Scaffolded services/{name}/ (handler, links to services/shared, requirements.in/.txt) and "
        f"{function_logical_id(name)} with layers {', '.join(layer_ids)}, its log group and alarms in {TEMPLATE}."
    )
    say("Next: inv build-layers; inv layer-modules; inv trace-layers; nox -s template_lint layer_tests")
