"""The template `sam deploy` gets: infra/template.yaml with what this deploy knows filled in.

- each function's CodeUri is a deterministic zip of its package (links followed), so an
  unchanged function uploads the same bytes and publishes no new version;
- each layer already published with the same bytes is pinned: its resource is dropped and every
  `!Ref` to it becomes that version's ARN, so no second version of identical content is made
  (a rollback pins every layer to the versions its release recorded);
- the other layers keep their resource, ContentUri made absolute, and CloudFormation publishes them;
- `<Function>LayersSha256` parameters: sha256 over the function's package and layer zips in
  Layers order and over its configuration (Globals.Function and its Properties, parameter Refs
  resolved), so a changed layer publishes a new version of each function that uses it, and
  changed code or configuration one of its own (AutoPublishCodeSha256 alone names SAM's version
  resource: with it set, SAM ignores AutoPublishAliasAllProperties and the configuration).
Pure functions over dicts, but for writing the zips and the template.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config.template import FUNCTION_TYPES, LAYER_TYPES, package_files
from ..core.errors import ConfigError
from ..core.layer_zip import write_zip

LAYERS_SHA_PARAMETER = "{function}LayersSha256"  # the function's logical id without "Function"


@dataclass(frozen=True)
class TemplateLayerUse:
    logical_id: str
    folder: str  # the layer's folder under layers/ (its zip's name)
    layer_name: str  # LayerName, resolved for the stage
    zip_path: Path


def resolve_sub(value: Any, parameters: dict[str, str], where: str) -> str:
    """A plain string, or `!Sub` over template parameters only (what LayerName and FunctionName use)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in parameters:
                raise ConfigError(f"{where}: ${{{name}}} cannot be known before deploying; use a template parameter.")
            return parameters[name]

        return re.sub(r"\$\{([^}!]+)\}", fill, value["Fn::Sub"])
    raise ConfigError(f"{where} is {value!r}; use a string or !Sub over template parameters.")


def template_parameters(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, str]:
    """Each parameter's value for this deploy: the override, else its Default."""
    values = {}
    for name, spec in template.get("Parameters", {}).items():
        if name in overrides:
            values[name] = overrides[name]
        elif "Default" in spec:
            values[name] = str(spec["Default"])
    unknown = sorted(set(overrides) - set(values))
    if unknown:
        raise ConfigError(f"Parameters {', '.join(unknown)} are not in the template's Parameters.")
    return values


def layer_uses(template: dict[str, Any], layers_dir: Path, parameters: dict[str, str]) -> dict[str, TemplateLayerUse]:
    """The template's layers, each at the zip of its ContentUri's name in `layers_dir`: the stage's
    build (BuildPaths.output_dir of its runtime and arch), whatever target ContentUri's own folder is for, so an
    arm64 stage never uploads the x86_64 zips the template's defaults point at."""
    uses = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") not in LAYER_TYPES:
            continue
        props = resource.get("Properties", {})
        uri = props.get("ContentUri")
        if not isinstance(uri, str) or not uri.endswith(".zip"):
            raise ConfigError(f"{logical_id} ContentUri must be the built layer zip, not {uri!r}.")
        zip_path = (layers_dir / Path(uri).name).resolve()
        uses[logical_id] = TemplateLayerUse(
            logical_id=logical_id,
            folder=zip_path.name.removesuffix(".zip"),
            layer_name=resolve_sub(props.get("LayerName", logical_id), parameters, f"{logical_id} LayerName"),
            zip_path=zip_path,
        )
    return uses


def function_layers(template: dict[str, Any]) -> dict[str, list[str]]:
    """Each function's layer logical ids (or literal ARNs), in its Layers order."""
    result = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") in FUNCTION_TYPES:
            items = resource.get("Properties", {}).get("Layers", [])
            result[logical_id] = [
                item["Ref"] if isinstance(item, dict) and "Ref" in item else str(item) for item in items
            ]
    return result


def layers_sha256(shas: list[str]) -> str:
    """One digest over a function's package and its layer zips, in order (a reorder is a change too)."""
    return hashlib.sha256("\n".join(shas).encode()).hexdigest()


def replace_refs(node: Any, values: dict[str, str]) -> Any:
    """`{"Ref": name}` replaced by values[name] everywhere in `node` (other Refs kept)."""
    if isinstance(node, dict):
        if set(node) == {"Ref"} and node["Ref"] in values:
            return values[node["Ref"]]
        return {key: replace_refs(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [replace_refs(item, values) for item in node]
    return node


# Covered by the function's package digest, or SAM's own output: not configuration of the version.
_NOT_CONFIGURATION = frozenset({"CodeUri", "AutoPublishCodeSha256"})


def function_configuration(template: dict[str, Any], function: str, parameters: dict[str, str]) -> dict[str, Any]:
    """What of the template decides a function's version besides its code and layer zips:
    Globals.Function and its own Properties, parameter Refs resolved (as SAM resolves them in
    Code), so a MemorySize, Timeout or Environment change is a different version. Everything else
    counts too (as with SAM's AutoPublishAliasAllProperties): a needless version is harmless, a
    missed one leaves `live` on the old configuration."""
    properties = template["Resources"][function].get("Properties", {})
    configuration: dict[str, Any] = {
        "Globals": replace_refs(template.get("Globals", {}).get("Function", {}), parameters),
        "Properties": {
            key: replace_refs(value, parameters) for key, value in properties.items() if key not in _NOT_CONFIGURATION
        },
    }
    return configuration


def layers_sha_parameters(
    template: dict[str, Any], layer_shas: dict[str, str], function_shas: dict[str, str], parameters: dict[str, str]
) -> dict[str, str]:
    """`<Function>LayersSha256` for every function whose template declares that parameter.

    SAM names the published version by AutoPublishCodeSha256 alone when it is set (not by
    CodeUri, nor by the properties AutoPublishAliasAllProperties would hash), so the value covers
    the function's own package and configuration as well as its layers."""
    declared = template.get("Parameters", {})
    digest_names = {LAYERS_SHA_PARAMETER.format(function=f.removesuffix("Function")) for f in function_layers(template)}
    # The digests must not depend on themselves (a rollback redeploys the recorded values).
    others = {key: value for key, value in parameters.items() if key not in digest_names}
    values = {}
    for function, layers in function_layers(template).items():
        name = LAYERS_SHA_PARAMETER.format(function=function.removesuffix("Function"))
        if name in declared:
            configuration = json.dumps(function_configuration(template, function, others), sort_keys=True)
            configuration_sha = hashlib.sha256(configuration.encode()).hexdigest()
            values[name] = layers_sha256(
                [function_shas[function], *(layer_shas[layer] for layer in layers), configuration_sha]
            )
    return values


def pin_layers(template: dict[str, Any], pinned: dict[str, str]) -> dict[str, Any]:
    """Drop the pinned layers' resources and put their version ARNs wherever they were referenced."""
    result = copy.deepcopy(template)
    for logical_id in pinned:
        result["Resources"].pop(logical_id, None)
    return replace_refs(result, pinned)  # type: ignore[no-any-return]


def with_artifacts(
    template: dict[str, Any], layer_zips: dict[str, Path], function_zips: dict[str, Path]
) -> dict[str, Any]:
    """Point each (unpinned) layer and each function at its zip, by absolute path."""
    result = copy.deepcopy(template)
    for logical_id, resource in result["Resources"].items():
        props = resource.get("Properties", {})
        if logical_id in layer_zips:
            props["ContentUri"] = str(layer_zips[logical_id])
        if logical_id in function_zips:
            props["CodeUri"] = str(function_zips[logical_id])
    return result


def write_function_zips(template: dict[str, Any], template_dir: Path, output_dir: Path) -> dict[str, Path]:
    """A deterministic zip of each function's package (what the sandbox lays out in task/)."""
    zips = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") not in FUNCTION_TYPES:
            continue
        code_uri = resource.get("Properties", {}).get("CodeUri")
        if not isinstance(code_uri, str):
            raise ConfigError(f"{logical_id} CodeUri must be the function's folder, not {code_uri!r}.")
        code_dir = (template_dir / code_uri).resolve()
        files = [rel for rel, _ in package_files(code_dir)]
        if not files:
            raise ConfigError(f"{logical_id} CodeUri {code_uri!r}: {code_dir} has no files to package.")
        destination = output_dir / f"{logical_id}.zip"
        write_zip(code_dir, destination, prefix="", files=files)
        zips[logical_id] = destination
    return zips


def write_template(template: dict[str, Any], destination: Path) -> Path:
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_suffix(".partial")
    partial.write_text(json.dumps(template, indent=1, sort_keys=False) + "\n")
    partial.replace(destination)
    return destination
