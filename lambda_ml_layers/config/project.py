"""Read `layers/defaults.toml` and each `layers/<name>/layer.toml` once, into frozen dataclasses.

Nothing deeper in the engine reads TOML. Every problem in every file is collected and
reported in one error, with the file, the key, and a close match for a misspelt key; the
checks of each value live in rules.py. One cause gives one message: an unreadable
defaults.toml or layer.toml is reported alone, not with the values it then seems to lack.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, collect
from ..core.suggestions import perhaps_you_meant
from ..core.toml_files import read_toml
from . import rules
from .prune import PruneConfig, prune_settings, suites_in_pruned_code
from .stages import SAMCONFIG, stage_names
from .strip_rules import StripRule
from .upstream_tests import UpstreamTests

DEFAULTS_FILE = "defaults.toml"
LAYER_FILE = "layer.toml"


@dataclass(frozen=True)
class LayerConfig:
    name: str
    folder: Path
    description: str
    budget_bytes: int  # enforced by the size gate
    target_bytes: int | None  # the project plan's goal, when the budget is set above it: reported, not enforced
    base_layers: tuple[str, ...]
    bytecode: str
    docstrings: str  # "keep", or "strip": compiled without docstrings, asserts kept
    strip_shared_objects: bool
    relayout_shared_objects: bool  # remove 64 KiB page padding (build/elf_layout.py)
    strip_rules: tuple[StripRule, ...]
    protect: tuple[str, ...]
    aws_services: tuple[str, ...] | None  # None: leave the AWS SDK's data untouched
    skip_imports: tuple[str, ...]
    # modules that may fail to import from the zip though they import unstripped: module -> why
    allowed_import_failures: dict[str, str]
    # the libraries' own test suites run against the layer (nox -s upstream_tests)
    upstream_tests: UpstreamTests
    # [prune]: remove what the trace and keep list do not cover (None: nothing pruned)
    prune: PruneConfig | None = None
    # [prune] as written, `enabled = false` included (the option a user can turn on)
    prune_option: PruneConfig | None = None

    @property
    def requirements_in(self) -> Path:
        return self.folder / "requirements.in"

    @property
    def lock(self) -> Path:
        return self.folder / "requirements.txt"


@dataclass(frozen=True)
class ProjectConfig:
    root: Path
    default_runtime: str
    default_arch: str
    layers: tuple[LayerConfig, ...]

    def layer(self, name: str) -> LayerConfig:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ConfigError(f"No layer named {name!r}; the layers are: {', '.join(self.layer_names)}.")

    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]


def layer_folders(layers_dir: Path) -> list[Path]:
    """Every folder under layers/ is a layer; hidden ones (.git, an editor's) and __pycache__ are not."""
    if not layers_dir.is_dir():
        return []
    return sorted(p for p in layers_dir.iterdir() if p.is_dir() and not p.name.startswith((".", "__")))


def _missing_layer_toml(folder: Path) -> str:
    others = sorted(p.name for p in folder.iterdir() if p.suffix.lower() == ".toml")
    found = f" (it has {', '.join(others)})" if others else ""
    return (
        f"{folder}: a folder under layers/ without {LAYER_FILE}{found}, so it is no layer. "
        f"Fix: name its settings file {LAYER_FILE}, or move the folder out of layers/."
    )


def _read_defaults(path: Path) -> tuple[dict[str, Any], tuple[StripRule, ...], tuple[str, ...]]:
    """defaults.toml's build settings, strip rules and protect list. Every layer inherits them,
    so a problem here is reported alone: checking layers against broken defaults only adds noise."""
    problems: list[str] = []
    defaults = read_toml(path)
    rules.check_keys(defaults, rules.DEFAULTS_KEYS, str(path), problems)
    build = rules.default_build_settings(rules.table(defaults, "build", str(path), problems), str(path), problems)
    strip = rules.table(defaults, "strip", str(path), problems)
    rules.check_keys(strip, rules.STRIP_KEYS, f"{path} [strip]", problems)
    strip_rules = rules.strip_rules(strip, str(path), problems)
    protect = rules.strings(strip.get("protect", []), f"{path} [strip] protect", problems)
    collect(problems, ConfigError, f"{path} has problems (every layer inherits it, so fix it first):")
    return build, strip_rules, protect


def _layer_config(
    folder: Path,
    raw: dict[str, Any],
    defaults: tuple[dict[str, Any], tuple[StripRule, ...], tuple[str, ...]],
    problems: list[str],
) -> LayerConfig:
    default_build, default_rules, protect = defaults
    where = str(folder / LAYER_FILE)
    rules.check_keys(raw, rules.LAYER_KEYS, where, problems)
    own_build = rules.table(raw, "build", where, problems)
    build = rules.build_settings(own_build, where, problems, default_build)
    for key in ("runtime", "arch"):
        if key in own_build:
            problems.append(
                f"{where} [build]: {key!r} is chosen per build (inv build-layers --{key}), not per layer; remove it."
            )
    strip = rules.table(raw, "strip", where, problems)
    rules.check_keys(strip, {"rules"}, f"{where} [strip]", problems)
    aws_sdk = rules.table(raw, "aws_sdk", where, problems)
    rules.check_keys(aws_sdk, rules.AWS_SDK_KEYS, f"{where} [aws_sdk]", problems)
    verify = rules.table(raw, "verify", where, problems)
    rules.check_keys(verify, rules.VERIFY_KEYS, f"{where} [verify]", problems)
    layer_tests = rules.table(raw, "layer_tests", where, problems)
    rules.check_keys(layer_tests, rules.LAYER_TESTS_KEYS, f"{where} [layer_tests]", problems)
    allowed = rules.table(layer_tests, "allowed_import_failures", f"{where} [layer_tests]", problems)
    if not all(isinstance(v, str) and v.strip() for v in allowed.values()):
        problems.append(f"{where} [layer_tests] allowed_import_failures: give each module a reason (a string).")
    upstream = rules.upstream_tests(raw, where, problems)
    prune_option = prune_settings(raw, folder, (folder / LAYER_FILE).read_text(encoding="utf-8"), problems)
    prune = prune_option if prune_option is not None and prune_option.enabled else None
    if prune is not None:
        problems += suites_in_pruned_code(upstream, prune, where)
    return LayerConfig(
        name=folder.name,
        folder=folder,
        description=rules.text(raw.get("description", ""), f"{where}: 'description'", problems),
        budget_bytes=rules.budget(raw, "budget_mb", where, problems),
        target_bytes=rules.budget(raw, "target_mb", where, problems) if "target_mb" in raw else None,
        base_layers=rules.strings(raw.get("base_layers", []), f"{where} base_layers", problems),
        bytecode=build.get("bytecode", "sourceless"),
        docstrings=build.get("docstrings", "keep"),
        strip_shared_objects=bool(build.get("strip_shared_objects", True)),
        relayout_shared_objects=bool(build.get("relayout_shared_objects", True)),
        strip_rules=default_rules + rules.strip_rules(strip, where, problems),
        protect=protect,
        aws_services=rules.kept_services(aws_sdk, where, problems),
        skip_imports=rules.strings(verify.get("skip_imports", []), f"{where} [verify]", problems),
        allowed_import_failures={str(k): str(v) for k, v in allowed.items()},
        upstream_tests=upstream,
        prune=prune,
        prune_option=prune_option,
    )


def load_project(root: Path) -> ProjectConfig:
    """Load and check every layer's config under `root/layers`; raise ConfigError listing all problems."""
    layers_dir = root / "layers"
    defaults = _read_defaults(layers_dir / DEFAULTS_FILE)
    stages = stage_names(root) if (root / SAMCONFIG).exists() else []
    problems: list[str] = []
    layers = []
    unreadable = set()  # layers whose own problem is already listed: not "missing" as a base too
    for folder in layer_folders(layers_dir):
        if not (folder / LAYER_FILE).is_file():
            problems.append(_missing_layer_toml(folder))
            unreadable.add(folder.name)
            continue
        problems += [f"{folder}: {p}" for p in rules.layer_name_problems(folder.name, stages)]
        try:
            raw = read_toml(folder / LAYER_FILE)
        except ConfigError as exc:
            problems.append(str(exc))  # the one cause; its values cannot be checked
            unreadable.add(folder.name)
            continue
        layers.append(_layer_config(folder, raw, defaults, problems))
    if not layers and not problems:
        problems.append(f"{layers_dir}: no layer folders with a {LAYER_FILE}.")
    _check_base_layers(layers, problems, unreadable)
    collect(problems, ConfigError, "The layer configuration has problems:")
    return ProjectConfig(
        root=root,
        default_runtime=defaults[0]["runtime"],
        default_arch=defaults[0]["arch"],
        layers=tuple(layers),
    )


def _check_base_layers(layers: list[LayerConfig], problems: list[str], unreadable: set[str]) -> None:
    names = {layer.name for layer in layers}
    by_name = {layer.name: layer for layer in layers}
    for layer in layers:
        for base in layer.base_layers:
            if base not in names and base not in unreadable:
                hint = perhaps_you_meant(base, sorted(names))
                problems.append(f"{layer.folder / 'layer.toml'}: base layer {base!r} does not exist.{hint}")
    for layer in layers:
        seen: list[str] = []
        todo = list(layer.base_layers)
        while todo:
            current = todo.pop()
            if current == layer.name:
                problems.append(f"{layer.folder / 'layer.toml'}: base_layers form a cycle through {layer.name!r}.")
                break
            if current in seen or current not in by_name:
                continue
            seen.append(current)
            todo.extend(by_name[current].base_layers)


def base_layers_of(project: ProjectConfig, layer: LayerConfig) -> list[LayerConfig]:
    """Every layer below `layer` (bases of bases too), in the order Lambda extracts them."""
    return [base for base in build_order(project, list(layer.base_layers)) if base.name != layer.name]


def build_order(project: ProjectConfig, names: list[str] | None = None) -> list[LayerConfig]:
    """The layers to build, each after its base layers (which are included when needed)."""
    wanted = project.layer_names if names is None else names
    ordered: list[LayerConfig] = []

    def visit(name: str) -> None:
        layer = project.layer(name)
        for base in layer.base_layers:
            visit(base)
        if layer not in ordered:
            ordered.append(layer)

    for name in wanted:
        visit(name)
    return ordered
