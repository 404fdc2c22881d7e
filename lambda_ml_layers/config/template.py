"""Read infra/template.yaml: which function uses which layers, on what runtime and arch."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import ConfigError
from ..core.layer_tree import walk_files
from ..core.suggestions import perhaps_you_meant

FUNCTION_TYPES = ("AWS::Serverless::Function",)
LAYER_TYPES = ("AWS::Serverless::LayerVersion",)
# The template parameters a stage sets (samconfig's parameter_overrides) to choose the Python
# runtime and architecture of its functions and layers; their Defaults are the build's default target.
RUNTIME_PARAMETER = "PythonRuntime"
TEMPLATE = Path("infra/template.yaml")  # where the project's SAM template is, from the repository root
ARCH_PARAMETER = "Architecture"


@dataclass(frozen=True)
class FunctionFacts:
    name: str  # logical id in the template
    runtime: str
    arch: str
    layers: tuple[str, ...]  # layer names, in the template's order
    code_bytes: int


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation's short tags (!Ref, !GetAtt, !Sub, ...)."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


@dataclass(frozen=True)
class TemplateLayer:
    logical_id: str
    layer_name: str  # the folder under layers/, from ContentUri's file name
    content_uri: str
    runtimes: tuple[str, ...]
    arches: tuple[str, ...]


def parse_template(text: str) -> Any:
    """A template's text (YAML with CloudFormation's short tags, or JSON) as plain data."""
    return yaml.load(text, Loader=_CfnLoader)


def load_template(path: Path) -> dict[str, Any]:
    try:
        data = parse_template(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc}).") from None
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise ConfigError(f"{path}: no Resources section; is this a SAM template?")
    return data


def parameter_value(value: Any, template: dict[str, Any], parameters: Mapping[str, str] | None = None) -> Any:
    """`value` with a `!Ref Parameter` read as the stage's value of it (`parameters`), else its
    Default; anything else is returned as it is."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        name = value["Ref"]
        if parameters is not None and name in parameters:
            return parameters[name]
        declared = template.get("Parameters", {}).get(name, {})
        if isinstance(declared, dict) and "Default" in declared:
            return declared["Default"]
    return value


def _values(value: Any, template: dict[str, Any], parameters: Mapping[str, str] | None) -> tuple[Any, ...]:
    """A list property (CompatibleRuntimes, Architectures, ...), each item's parameter Ref resolved."""
    items = value if isinstance(value, list) else [value]
    return tuple(parameter_value(item, template, parameters) for item in items)


def template_layers(template: dict[str, Any], parameters: Mapping[str, str] | None = None) -> dict[str, TemplateLayer]:
    """The template's layers, CompatibleRuntimes/Architectures resolved for `parameters` (a stage's
    values; the parameters' Defaults for the rest)."""
    layers = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") not in LAYER_TYPES:
            continue
        props = resource.get("Properties", {})
        uri = props.get("ContentUri", "")
        name = Path(uri).name.removesuffix(".zip") if isinstance(uri, str) else ""
        layers[logical_id] = TemplateLayer(
            logical_id=logical_id,
            layer_name=name,
            content_uri=uri if isinstance(uri, str) else "",
            runtimes=_values(props.get("CompatibleRuntimes", []), template, parameters),
            arches=_values(props.get("CompatibleArchitectures", ["x86_64"]), template, parameters),
        )
    return layers


def target_parameters(template: dict[str, Any], runtime: str, arch: str) -> dict[str, str]:
    """The values of the runtime and architecture parameters the template declares that put it on
    (runtime, arch): what a build for that target checks the functions with."""
    declared = template.get("Parameters", {})
    wanted = {RUNTIME_PARAMETER: runtime, ARCH_PARAMETER: arch}
    return {name: value for name, value in wanted.items() if name in declared}


def unknown_layer_problems(path: Path, known: list[str]) -> list[str]:
    """Each layer resource of the template whose ContentUri names no layer folder: the build
    can never make its zip, so "build the layers" is no fix; the template or layers/ is."""
    problems = []
    for layer in template_layers(load_template(path)).values():
        if layer.layer_name not in known:
            hint = perhaps_you_meant(layer.layer_name, known)
            problems.append(
                f"{path}: {layer.logical_id} (ContentUri {layer.content_uri!r}) is layer {layer.layer_name!r}, "
                f"but no layer folder defines it: there is no layers/{layer.layer_name}/layer.toml.{hint} "
                f"Known layers: {', '.join(known) or 'none'}. Fix: point ContentUri at one of them, or "
                f"create layers/{layer.layer_name}/ with a layer.toml."
            )
    return problems


def _layer_ref(item: Any) -> str | None:
    if isinstance(item, dict) and "Ref" in item:
        return str(item["Ref"])
    return None


# What SAM would package from CodeUri but Lambda never needs: tests, caches, the lock files.
_NOT_PACKAGED_DIRS = ("tests", "__pycache__")
_NOT_PACKAGED_FILES = ("requirements.in", "requirements.txt")


def package_files(code_dir: Path) -> list[tuple[str, int]]:
    """(path, size) of every file of the function's package, as the sandbox lays it out in task/."""
    if not code_dir.is_dir():
        return []
    return [
        (rel, size)
        for rel, size in walk_files(code_dir)
        if not any(part in _NOT_PACKAGED_DIRS for part in rel.split("/")[:-1])
        and rel.rsplit("/", 1)[-1] not in _NOT_PACKAGED_FILES
        and not rel.endswith(".pyc")
    ]


@dataclass(frozen=True)
class FunctionSpec:
    """One function of the template, as the size gates and the sandbox need it."""

    name: str  # logical id
    code_dir: Path
    handler: str
    runtime: str
    arch: str
    layers: tuple[str, ...]  # layer folder names, in the template's order (extraction order)
    memory_mb: int
    timeout_s: int
    environment: dict[str, str]  # plain values only; !Ref and friends are filled in at deploy

    @property
    def facts(self) -> FunctionFacts:
        code_bytes = sum(size for _, size in package_files(self.code_dir))
        return FunctionFacts(self.name, self.runtime, self.arch, self.layers, code_bytes)


def _literal(value: Any, template: dict[str, Any], where: str, parameters: Mapping[str, str] | None = None) -> Any:
    """A property's value, with `!Ref Parameter` read as the stage's value (`parameters`), else the
    parameter's Default (what the build and the sandbox assume); other intrinsics cannot be known
    before deploy."""
    value = parameter_value(value, template, parameters)
    if isinstance(value, list):
        return [_literal(item, template, where, parameters) for item in value]
    if isinstance(value, dict):
        raise ConfigError(
            f"{where} is {value!r}; the build needs a value it can read before deploying: a literal, or "
            f"!Ref to a parameter with a Default."
        )
    return value


def function_specs(path: Path, parameters: Mapping[str, str] | None = None) -> list[FunctionSpec]:
    """Every function in the template with its layers (by layer folder name), in order; parameter
    Refs (Runtime, Architectures, ...) read as `parameters` gives them, else their Defaults."""
    return specs_of(load_template(path), path, parameters)


def specs_of(template: dict[str, Any], path: Path, parameters: Mapping[str, str] | None = None) -> list[FunctionSpec]:
    """function_specs of a template already read from `path`."""
    layers = template_layers(template, parameters)
    defaults = template.get("Globals", {}).get("Function", {})
    specs = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") not in FUNCTION_TYPES:
            continue
        own = resource.get("Properties", {})
        props = {**defaults, **own}

        def prop(key: str, default: Any, logical_id: str = logical_id, props: dict[str, Any] = props) -> Any:
            return _literal(props.get(key, default), template, f"{path}: {logical_id} {key}", parameters)

        names = []
        for item in props.get("Layers", []):
            ref = _layer_ref(item)
            if ref is None or ref not in layers:
                raise ConfigError(
                    f"{path}: function {logical_id} lists layer {item!r}; use !Ref to one of the "
                    f"template's layers ({', '.join(layers) or 'none defined'})."
                )
            if layers[ref].layer_name in names:
                # Not a layer order or base-layer problem: advice of that kind would pair the layer with itself.
                raise ConfigError(
                    f"{path}: function {logical_id} lists layer {ref} ({layers[ref].layer_name}) more than once "
                    f"in its Layers. Fix: list each layer once."
                )
            names.append(layers[ref].layer_name)
        arches = prop("Architectures", ["x86_64"])
        variables = {
            **defaults.get("Environment", {}).get("Variables", {}),
            **own.get("Environment", {}).get("Variables", {}),
        }
        try:
            memory_mb, timeout_s = int(prop("MemorySize", 128)), int(prop("Timeout", 3))
        except (TypeError, ValueError):
            raise ConfigError(f"{path}: {logical_id} MemorySize and Timeout must be whole numbers.") from None
        specs.append(
            FunctionSpec(
                name=logical_id,
                code_dir=(path.parent / str(prop("CodeUri", ""))).resolve(),
                handler=str(prop("Handler", "")),
                runtime=str(prop("Runtime", "")),
                arch=str(arches[0]) if isinstance(arches, list) and arches else "x86_64",
                layers=tuple(names),
                memory_mb=memory_mb,
                timeout_s=timeout_s,
                environment={k: str(v) for k, v in variables.items() if isinstance(v, str | int | float)},
            )
        )
    return specs


def template_functions(path: Path, parameters: Mapping[str, str] | None = None) -> list[FunctionFacts]:
    return [spec.facts for spec in function_specs(path, parameters)]


def template_layer_failures(
    path: Path, runtime: str, arch: str, output_dir: Path, parameters: Mapping[str, str] | None = None
) -> list[str]:
    """A layer with compiled extensions works on one Python minor version and one arch only, so
    the template must declare exactly what was built (for the target `parameters` choose); listing
    more is a silent mistake. ContentUri names the zip of the parameters' Defaults (`inv deploy`
    points each layer at its stage's target's zip of the same name), so its folder is checked only
    on that target."""
    failures = []
    template = load_template(path)
    defaults = template_layers(template)
    for layer in template_layers(template, parameters).values():
        expected = (output_dir / f"{layer.layer_name}.zip").resolve()
        on_defaults = defaults[layer.logical_id].runtimes == (runtime,) and defaults[layer.logical_id].arches == (arch,)
        if on_defaults and (path.parent / layer.content_uri).resolve() != expected:
            failures.append(
                f"{path}: {layer.logical_id} ContentUri {layer.content_uri!r} is not the zip this build wrote "
                f"for {runtime}/{arch}. Fix: ContentUri: {os.path.relpath(expected, path.parent)}."
            )
        if layer.runtimes != (runtime,):
            failures.append(
                f"{path}: {layer.logical_id} declares CompatibleRuntimes {list(layer.runtimes)} but "
                f"the layer is built for {runtime} only. Fix: CompatibleRuntimes: [{runtime}]."
            )
        if layer.arches != (arch,):
            failures.append(
                f"{path}: {layer.logical_id} declares CompatibleArchitectures {list(layer.arches)} but "
                f"the layer is built for {arch} only. Fix: CompatibleArchitectures: [{arch}]."
            )
    return failures
