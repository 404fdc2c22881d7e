"""Read `layers/defaults.toml` and each `layers/<name>/layer.toml` once, into frozen dataclasses.

Nothing deeper in the engine reads TOML. Every problem in every file is collected and
reported in one error, with the file, the key, and a close match for a misspelt key.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, collect
from .runtimes import ARCHES, LAMBDA_UNZIPPED_LIMIT, MB, RUNTIMES

BYTECODE_POLICIES = ("source", "pyc", "sourceless")

_BUILD_KEYS = {"runtime", "arch", "bytecode", "strip_shared_objects"}
_RULE_KEYS = {"name", "why", "directories", "files", "paths", "keep"}
_STRIP_KEYS = {"protect", "rules"}
_DEFAULTS_KEYS = {"build", "strip"}
_LAYER_KEYS = {
    "description",
    "budget_mb",
    "target_mb",
    "base_layers",
    "build",
    "strip",
    "aws_sdk",
    "verify",
    "layer_tests",
}
_AWS_SDK_KEYS = {"keep_services"}
_VERIFY_KEYS = {"skip_imports"}
_LAYER_TESTS_KEYS = {"allowed_import_failures"}


@dataclass(frozen=True)
class StripRule:
    """Delete files that match, unless they match `keep` or the global `protect` list.

    `directories` and `files` are globs on one path component (anywhere in the tree);
    `paths` and `keep` are globs on the whole path relative to the layer root.
    """

    name: str
    why: str
    directories: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()


@dataclass(frozen=True)
class LayerConfig:
    name: str
    folder: Path
    description: str
    budget_bytes: int  # enforced by the size gate
    target_bytes: int | None  # the project plan's goal, when the budget is set above it: reported, not enforced
    base_layers: tuple[str, ...]
    bytecode: str
    strip_shared_objects: bool
    strip_rules: tuple[StripRule, ...]
    protect: tuple[str, ...]
    aws_services: tuple[str, ...] | None  # None: leave the AWS SDK's data untouched
    skip_imports: tuple[str, ...]
    # modules that may fail to import from the zip though they import unstripped: module -> why
    allowed_import_failures: dict[str, str]

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


def _read_toml(path: Path, problems: list[str]) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        problems.append(f"{path}: file is missing.")
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{path}: not valid TOML ({exc}). Fix the syntax and run again.")
    return {}


def _check_keys(table: dict[str, Any], allowed: set[str], where: str, problems: list[str]) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f" Perhaps you meant {close[0]!r}?" if close else ""
            problems.append(f"{where}: unknown key {key!r}.{hint} Allowed: {', '.join(sorted(allowed))}.")


def _table(raw: dict[str, Any], key: str, where: str, problems: list[str]) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        problems.append(f"{where}: {key!r} must be a table ([{key}]).")
        return {}
    return value


def _strings(value: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}: must be a list of strings.")
        return ()
    return tuple(value)


def _string(value: Any, where: str, problems: list[str]) -> str:
    if not isinstance(value, str):
        problems.append(f"{where} must be a string (text in quotes).")
        return ""
    return value


def _rules(strip: dict[str, Any], where: str, problems: list[str]) -> tuple[StripRule, ...]:
    rules = []
    raw_rules = strip.get("rules", [])
    if not isinstance(raw_rules, list):
        problems.append(f"{where} [strip]: 'rules' must be an array of tables ([[strip.rules]]).")
        return ()
    for index, raw in enumerate(raw_rules):
        rule_where = f"{where} [[strip.rules]] #{index + 1}"
        if not isinstance(raw, dict):
            problems.append(f"{rule_where}: must be a table.")
            continue
        _check_keys(raw, _RULE_KEYS, rule_where, problems)
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            problems.append(f"{rule_where}: needs a 'name'.")
            continue
        globs = {
            key: _strings(raw.get(key, []), f"{rule_where} ({name}) {key}", problems)
            for key in ("directories", "files", "paths", "keep")
        }
        if not (globs["directories"] or globs["files"] or globs["paths"]):
            problems.append(f"{rule_where} ({name}): matches nothing; give directories, files or paths.")
        rules.append(StripRule(name=name, why=str(raw.get("why", "")), **globs))
    return tuple(rules)


def _build_settings(
    build: dict[str, Any], where: str, problems: list[str], inherited: dict[str, Any]
) -> dict[str, Any]:
    _check_keys(build, _BUILD_KEYS, f"{where} [build]", problems)
    merged = {**inherited, **build}
    if merged.get("runtime") not in RUNTIMES:
        problems.append(f"{where} [build]: runtime {merged.get('runtime')!r} is not one of {', '.join(RUNTIMES)}.")
    if merged.get("arch") not in ARCHES:
        problems.append(f"{where} [build]: arch {merged.get('arch')!r} is not one of {', '.join(ARCHES)}.")
    if merged.get("bytecode") not in BYTECODE_POLICIES:
        problems.append(
            f"{where} [build]: bytecode {merged.get('bytecode')!r} is not one of {', '.join(BYTECODE_POLICIES)}."
        )
    if not isinstance(merged.get("strip_shared_objects"), bool):
        problems.append(f"{where} [build]: strip_shared_objects must be true or false.")
    return merged


def _budget(raw: dict[str, Any], key: str, where: str, problems: list[str]) -> int:
    budget = raw.get(key)
    if not isinstance(budget, int | float) or isinstance(budget, bool) or not math.isfinite(budget) or budget <= 0:
        problems.append(f"{where}: {key!r} must be a positive number of MB (1 MB = 1,000,000 bytes).")
        return 0
    budget_bytes = int(budget * MB)
    if budget_bytes > LAMBDA_UNZIPPED_LIMIT:
        problems.append(
            f"{where}: {key} = {budget} is {budget_bytes:,} bytes, above Lambda's limit of "
            f"{LAMBDA_UNZIPPED_LIMIT:,} bytes unzipped for a function and all its layers. "
            f"Set {key} to at most {LAMBDA_UNZIPPED_LIMIT / MB:.0f}."
        )
    return budget_bytes


def load_project(root: Path) -> ProjectConfig:
    """Load and check every layer's config under `root/layers`; raise ConfigError listing all problems."""
    problems: list[str] = []
    layers_dir = root / "layers"
    defaults_path = layers_dir / "defaults.toml"
    defaults = _read_toml(defaults_path, problems)
    _check_keys(defaults, _DEFAULTS_KEYS, str(defaults_path), problems)
    default_build = _build_settings(
        _table(defaults, "build", str(defaults_path), problems), str(defaults_path), problems, {}
    )
    default_strip = _table(defaults, "strip", str(defaults_path), problems)
    _check_keys(default_strip, _STRIP_KEYS, f"{defaults_path} [strip]", problems)
    default_rules = _rules(default_strip, str(defaults_path), problems)
    protect = _strings(default_strip.get("protect", []), f"{defaults_path} [strip] protect", problems)

    layers = []
    folders = sorted(p for p in layers_dir.iterdir() if p.is_dir()) if layers_dir.is_dir() else []
    for folder in folders:
        path = folder / "layer.toml"
        if not path.exists():
            continue
        where = str(path)
        raw = _read_toml(path, problems)
        _check_keys(raw, _LAYER_KEYS, where, problems)
        own_build = _table(raw, "build", where, problems)
        build = _build_settings(own_build, where, problems, default_build)
        for key in ("runtime", "arch"):
            if key in own_build:
                problems.append(
                    f"{where} [build]: {key!r} is chosen per build (inv build-layers --{key}), "
                    f"not per layer; remove it."
                )
        strip = _table(raw, "strip", where, problems)
        _check_keys(strip, {"rules"}, f"{where} [strip]", problems)
        aws_sdk = _table(raw, "aws_sdk", where, problems)
        _check_keys(aws_sdk, _AWS_SDK_KEYS, f"{where} [aws_sdk]", problems)
        services = None
        if "keep_services" in aws_sdk:
            services = _strings(aws_sdk["keep_services"], f"{where} [aws_sdk] keep_services", problems)
        verify = _table(raw, "verify", where, problems)
        _check_keys(verify, _VERIFY_KEYS, f"{where} [verify]", problems)
        layer_tests = _table(raw, "layer_tests", where, problems)
        _check_keys(layer_tests, _LAYER_TESTS_KEYS, f"{where} [layer_tests]", problems)
        allowed = _table(layer_tests, "allowed_import_failures", f"{where} [layer_tests]", problems)
        if not all(isinstance(v, str) and v.strip() for v in allowed.values()):
            problems.append(f"{where} [layer_tests] allowed_import_failures: give each module a reason (a string).")
        layers.append(
            LayerConfig(
                name=folder.name,
                folder=folder,
                description=_string(raw.get("description", ""), f"{where}: 'description'", problems),
                budget_bytes=_budget(raw, "budget_mb", where, problems),
                target_bytes=_budget(raw, "target_mb", where, problems) if "target_mb" in raw else None,
                base_layers=_strings(raw.get("base_layers", []), f"{where} base_layers", problems),
                bytecode=build.get("bytecode", "sourceless"),
                strip_shared_objects=bool(build.get("strip_shared_objects", True)),
                strip_rules=default_rules + _rules(strip, where, problems),
                protect=protect,
                aws_services=services,
                skip_imports=_strings(verify.get("skip_imports", []), f"{where} [verify]", problems),
                allowed_import_failures={str(k): str(v) for k, v in allowed.items()},
            )
        )
    if not layers and not problems:
        problems.append(f"{layers_dir}: no layer folders with a layer.toml.")
    _check_base_layers(layers, problems)
    collect(problems, ConfigError, "The layer configuration has problems:")
    return ProjectConfig(
        root=root,
        default_runtime=default_build["runtime"],
        default_arch=default_build["arch"],
        layers=tuple(layers),
    )


def _check_base_layers(layers: list[LayerConfig], problems: list[str]) -> None:
    names = {layer.name for layer in layers}
    by_name = {layer.name: layer for layer in layers}
    for layer in layers:
        for base in layer.base_layers:
            if base not in names:
                close = difflib.get_close_matches(base, sorted(names), n=1)
                hint = f" Perhaps you meant {close[0]!r}?" if close else ""
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
