"""Read infra/template.yaml: which function uses which layers, on what runtime and arch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .layer_tree import tree_size, walk_files
from .size_gates import FunctionFacts

FUNCTION_TYPES = ("AWS::Serverless::Function",)
LAYER_TYPES = ("AWS::Serverless::LayerVersion",)


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
    runtimes: tuple[str, ...]
    arches: tuple[str, ...]


def load_template(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(), Loader=_CfnLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc}).") from None
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise ConfigError(f"{path}: no Resources section; is this a SAM template?")
    return data


def template_layers(template: dict[str, Any]) -> dict[str, TemplateLayer]:
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
            runtimes=tuple(props.get("CompatibleRuntimes", [])),
            arches=tuple(props.get("CompatibleArchitectures", ["x86_64"])),
        )
    return layers


def _layer_ref(item: Any) -> str | None:
    if isinstance(item, dict) and "Ref" in item:
        return str(item["Ref"])
    return None


def code_size(code_dir: Path) -> int:
    """The function's own code as it would be packaged: no tests or caches."""
    if not code_dir.is_dir():
        return 0
    skip = ("tests/", "__pycache__/")
    total = tree_size(code_dir)
    return total - sum(
        size for rel, size in walk_files(code_dir) if any(s in f"{rel}" for s in skip) or rel.endswith(".pyc")
    )


def template_functions(path: Path) -> list[FunctionFacts]:
    """Every function in the template with its layers (by layer folder name), in order."""
    template = load_template(path)
    layers = template_layers(template)
    defaults = template.get("Globals", {}).get("Function", {})
    functions = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") not in FUNCTION_TYPES:
            continue
        props = {**defaults, **resource.get("Properties", {})}
        names = []
        for item in props.get("Layers", []):
            ref = _layer_ref(item)
            if ref is None or ref not in layers:
                raise ConfigError(
                    f"{path}: function {logical_id} lists layer {item!r}; use !Ref to one of the "
                    f"template's layers ({', '.join(layers) or 'none defined'})."
                )
            names.append(layers[ref].layer_name)
        code_uri = props.get("CodeUri", "")
        code_dir = (path.parent / code_uri) if isinstance(code_uri, str) else path.parent
        arches = props.get("Architectures", ["x86_64"])
        functions.append(
            FunctionFacts(
                name=logical_id,
                runtime=str(props.get("Runtime", "")),
                arch=str(arches[0]) if arches else "x86_64",
                layers=tuple(names),
                code_bytes=code_size(code_dir),
            )
        )
    return functions


def template_layer_failures(path: Path, runtime: str, arch: str) -> list[str]:
    """A layer with compiled extensions works on one Python minor version and one arch only, so
    the template must declare exactly what was built; listing more is a silent mistake."""
    failures = []
    for layer in template_layers(load_template(path)).values():
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
