"""What `inv new-layer` and `inv new-function` write: names checked, files and template text
rendered. Pure: names and text in, text or problems out (build/scaffold.py does the writing)."""

from __future__ import annotations

import keyword
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..core.suggestions import perhaps_you_meant

LAYER_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
FUNCTION_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
# LayerName and FunctionName are `lambda-ml-layers-<stage>-<name>`: Lambda allows 64 characters
# for a function name, and "lambda-ml-layers-staging-" takes 25 of them.
MAX_NAME = 39
# Folders of services/ that are not functions.
NOT_FUNCTIONS = ("shared", "training")
MAX_LAYERS = 5  # Lambda's limit per function
# The distributions whose module is not their name with `-` as `_`; the smoke test is only
# scaffolded, so a name missing here shows as a clear ModuleNotFoundError in `nox -s layer_tests`.
IMPORT_NAMES = {
    "scikit-learn": "sklearn",
    "xgboost-cpu": "xgboost",
    "python-dateutil": "dateutil",
    "pyyaml": "yaml",
    "pillow": "PIL",
    "beautifulsoup4": "bs4",
    "opencv-python-headless": "cv2",
    "opencv-python": "cv2",
    "scikit-image": "skimage",
    "protobuf": "google.protobuf",
}
SHA_PARAMETER = "LayersSha256"


def camel(name: str) -> str:
    """The logical-id stem of a layer or function name: gbm-libraries -> GbmLibraries."""
    return "".join(part.capitalize() for part in re.split(r"[-_]", name))


def layer_logical_id(name: str) -> str:
    return f"{camel(name)}Layer"


def function_logical_id(name: str) -> str:
    return f"{camel(name)}Function"


def name_problems(kind: str, name: str, pattern: re.Pattern[str], example: str) -> list[str]:
    if not pattern.match(name):
        return [
            f"{kind} name {name!r} is not allowed: use lower-case letters and digits, words joined by "
            f"{'-' if '-' in example else '_'}, starting with a letter (e.g. {example!r})."
        ]
    if len(name) > MAX_NAME:
        return [f"{kind} name {name!r} is {len(name)} characters; at most {MAX_NAME} fit Lambda's names."]
    return []


def layer_name_problems(name: str, existing_layers: Sequence[str], logical_ids: Sequence[str]) -> list[str]:
    problems = name_problems("Layer", name, LAYER_NAME, "gbm-libraries")
    if name in existing_layers:
        problems.append(f"layers/{name}/ exists already. Fix: choose another name, or edit that layer.")
    elif not problems and layer_logical_id(name) in logical_ids:
        problems.append(
            f"infra/template.yaml already has a resource {layer_logical_id(name)}. Fix: choose another name."
        )
    return problems


def function_name_problems(name: str, existing_folders: Sequence[str], logical_ids: Sequence[str]) -> list[str]:
    problems = name_problems("Function", name, FUNCTION_NAME, "scoring")
    if not problems and keyword.iskeyword(name):
        problems.append(f"Function name {name!r} is a Python keyword; it names the function's package.")
    if name in existing_folders or name in NOT_FUNCTIONS:
        problems.append(f"services/{name}/ exists already. Fix: choose another name, or edit that function.")
    elif not problems:
        taken = [i for i in (function_logical_id(name), f"{camel(name)}LogGroup") if i in logical_ids]
        if taken:
            problems.append(f"infra/template.yaml already has {', '.join(taken)}. Fix: choose another name.")
    return problems


def package_problems(packages: Sequence[str]) -> list[str]:
    """Each --package must be a requirement pip understands; naming one twice is a mistake."""
    if not packages:
        return ["Name at least one package: --package NAME (repeat it for more), e.g. --package lightgbm."]
    problems = []
    seen: set[str] = set()
    for package in packages:
        try:
            requirement = Requirement(package)
        except InvalidRequirement as exc:
            problems.append(f"--package {package!r} is not a requirement pip understands ({exc}).")
            continue
        name = canonicalize_name(requirement.name)
        if name in seen:
            problems.append(f"--package {requirement.name!r} is given twice.")
        seen.add(name)
    return problems


def import_name(package: str) -> str:
    name = canonicalize_name(Requirement(package).name)
    return IMPORT_NAMES.get(name, name.replace("-", "_"))


def function_layer_problems(wanted: Sequence[str], known: Sequence[str], bases: dict[str, list[str]]) -> list[str]:
    """--layers must name template layers, at most five, each with its base layers listed too."""
    if not wanted:
        return ["Name the function's layers: --layers L1,L2 (layer folders under layers/)."]
    problems = []
    for layer in wanted:
        if layer not in known:
            hint = perhaps_you_meant(layer, known)
            problems.append(
                f"--layers names {layer!r}, which is no layer of infra/template.yaml "
                f"(known: {', '.join(known) or 'none'}).{hint} Fix: correct the name, or add it with `inv new-layer`."
            )
    for layer in wanted:
        for base in bases.get(layer, []):
            if base not in wanted:
                problems.append(
                    f"layer {layer!r} is built on {base!r}, which the function must use too (a function "
                    f"sees only its own layers). Fix: add {base} to --layers."
                )
    if len(set(wanted)) != len(wanted):
        problems.append("--layers names a layer twice.")
    if len(wanted) > MAX_LAYERS:
        problems.append(f"--layers names {len(wanted)} layers; Lambda allows at most {MAX_LAYERS} per function.")
    return problems


@dataclass(frozen=True)
class LayerFiles:
    layer_toml: str
    requirements_in: str
    smoke_test: str


def layer_files(name: str, packages: Sequence[str], base: Sequence[str]) -> LayerFiles:
    listed = ", ".join(Requirement(p).name for p in packages)
    bases = ", ".join(f'"{b}"' for b in base)
    layer_toml = (
        f'description = "{listed}"\n'
        "# The size gate: raise it if the built layer needs more, and say why here. The layer's\n"
        "# functions must still fit Lambda's 262 MB with all their layers (`inv size-report`).\n"
        "budget_mb = 250\n"
        + (f"# Packages these layers provide are not installed again here.\nbase_layers = [{bases}]\n" if base else "")
        + "\n[build]\n"
        '# Docstrings are kept: stripping them ("strip") saves a little, but packages that read their own\n'
        "# __doc__ at import fail (lightgbm: AttributeError on None); try it, and the build's verify says.\n"
        'docstrings = "keep"\n'
    )
    requirements_in = "".join(f"{p}\n" for p in packages)
    imports = "".join(f'    "{Requirement(p).name}": "{import_name(p)}",\n' for p in packages)
    smoke_test = f'''"""Smoke test of {name}, run by `nox -s layer_tests` with only the layers on sys.path
(scaffolded by `inv new-layer`). `layer_tests` already imports every module of the layer; add here
a small use of what your functions need, as layers/core-data-science/smoke_test.py does."""

import importlib
import importlib.metadata

# Each package the layer provides -> the module it is imported as.
PROVIDES = {{
{imports}}}
for distribution, module in PROVIDES.items():
    importlib.metadata.version(distribution)  # its METADATA is in the layer
    importlib.import_module(module)
print("{name} smoke test passed: " + ", ".join(PROVIDES))
'''
    return LayerFiles(layer_toml, requirements_in, smoke_test)


@dataclass(frozen=True)
class FunctionFiles:
    init: str
    handler: str
    requirements_in: str


def function_files(name: str, layer_ids: Sequence[str], modules: Sequence[str]) -> FunctionFiles:
    logical = camel(name)
    imports = "".join(f"    import {m}  # noqa: F401\n" for m in modules) or "    pass\n"
    # Wrapped: five layer names would pass ruff's line length.
    layers_line = textwrap.fill(f"Layers: {', '.join(layer_ids)}.", 96)
    handler = f'''"""{logical} handler, scaffolded by `inv new-function`.

{layers_line}
Event: whatever its caller sends. It answers the deploy's smoke event after its init (every layer
import) has run; replace the body of `lambda_handler` with the function's job.
"""

from __future__ import annotations

import os
from typing import Any

from .runtime import Logger, lambda_entry, layer_imports

FUNCTION = "{logical}"
logger = Logger(os.environ.get("POWERTOOLS_SERVICE_NAME", "{name.replace("_", "-")}"))

# A module a layer should provide but does not fails the init naming the layer to attach.
with layer_imports(FUNCTION, logger):
{imports}

@lambda_entry(FUNCTION, logger)
def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    logger.info("{name} ran", keys=sorted(event) if isinstance(event, dict) else None)
    return {{"status": "ok"}}
'''
    requirements_in = (
        f"# What {logical} needs beyond its layers ({', '.join(layer_ids)}). A package a layer provides\n"
        "# must not be listed here: the build refuses it.\n"
    )
    return FunctionFiles(f'"""{logical}: scaffolded by `inv new-function`."""\n', handler, requirements_in)


def function_lock_command(name: str) -> str:
    return (
        "pip-compile --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url "
        f"--no-emit-find-links requirements.in  (in services/{name})"
    )


# --- infra/template.yaml: text inserted at the end of a top-level section -----------------


def _top_level_keys(lines: Sequence[str]) -> list[tuple[int, str]]:
    return [(i, line.split(":", 1)[0]) for i, line in enumerate(lines) if re.match(r"^[A-Za-z][A-Za-z0-9]*:", line)]


def append_to_section(text: str, section: str, block: str, gap: bool = False) -> str:
    """`block` (indented for the section) after the last entry of top-level `section`; the
    section is added at the end when the template has none. Comments and blank lines that open
    the next section stay with it."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    keys = _top_level_keys(lines)
    starts = [i for i, key in keys if key == section]
    if not starts:
        return "".join(lines) + f"\n{section}:\n" + block
    after = [i for i, _ in keys if i > starts[0]]
    end = after[0] if after else len(lines)
    while end > starts[0] + 1 and (not lines[end - 1].strip() or lines[end - 1].startswith("#")):
        end -= 1
    return "".join(lines[:end]) + ("\n" if gap else "") + block + "".join(lines[end:])


def insert_after_resource(text: str, logical_id: str, block: str) -> str:
    """`block` right after resource `logical_id` (keeps the layers together in the template)."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.rstrip() == f"  {logical_id}:")
    end = start + 1
    while end < len(lines) and not re.match(r"^(  [A-Za-z#]|[A-Za-z#])", lines[end]):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    return "".join(lines[:end]) + "\n" + block.rstrip("\n") + "\n" + "".join(lines[end:])


def layer_resource(name: str, description: str, content_uri: str, runtime: str, arch: str) -> str:
    return f"""  {layer_logical_id(name)}:
    Type: AWS::Serverless::LayerVersion
    Properties:
      LayerName: !Sub lambda-ml-layers-${{Stage}}-{name}
      Description: {description}
      ContentUri: {content_uri}
      CompatibleRuntimes: [{runtime}]
      CompatibleArchitectures: [{arch}]
      RetentionPolicy: Retain
"""


def layer_output(name: str) -> str:
    return f"  {layer_logical_id(name)}Arn:\n    Value: !Ref {layer_logical_id(name)}\n"


def sha_parameter(name: str, layer_names: Sequence[str]) -> str:
    zips = ", ".join(f"{layer}.zip" for layer in layer_names)
    return f"""  {camel(name)}{SHA_PARAMETER}:
    Type: String
    Default: unset
    AllowedPattern: "^(unset|[0-9a-f]{{64}})$"
    Description: sha256 over the function's package zip, {zips} and its configuration
"""


def function_resources(
    name: str, layer_ids: Sequence[str], function_skips: bool, log_group_skips: bool, timeout_s: int = 120
) -> str:
    """The function, its log group, its init-duration metric and its four alarms, as the
    template's other functions have them (tests/services/template checks every function)."""
    stem, kebab = camel(name), name.replace("_", "-")
    fn = f"{stem}Function"
    layers = "".join(f"        - !Ref {layer}\n" for layer in layer_ids)
    function_meta = "    Metadata:\n      checkov:\n        skip: *function_skips\n" if function_skips else ""
    log_meta = "    Metadata:\n      checkov:\n        skip: *log_group_skips\n" if log_group_skips else ""

    def alarm(kind: str, description: str, body: str) -> str:
        return (
            f"  {stem}{kind}Alarm:\n    Type: AWS::CloudWatch::Alarm\n    Properties:\n"
            f"      AlarmDescription: {stem} {description}\n{body}"
            "      TreatMissingData: notBreaching\n      AlarmActions: [!Ref AlarmTopic]\n"
        )

    count = (
        "      Namespace: AWS/Lambda\n      MetricName: {metric}\n"
        f"      Dimensions: [{{Name: FunctionName, Value: !Ref {fn}}}]\n"
        "      Statistic: Sum\n      Period: 300\n      EvaluationPeriods: 1\n      Threshold: 1\n"
        "      ComparisonOperator: GreaterThanOrEqualToThreshold\n"
    )
    duration = (
        "      Namespace: AWS/Lambda\n      MetricName: Duration\n"
        f"      Dimensions: [{{Name: FunctionName, Value: !Ref {fn}}}]\n"
        "      ExtendedStatistic: p99\n      Period: 300\n      EvaluationPeriods: 3\n"
        f"      Threshold: {timeout_s * 800}\n      ComparisonOperator: GreaterThanThreshold\n"
    )
    init = (
        f"      Namespace: LambdaMLLayers/InitDuration\n      MetricName: !Ref {fn}\n"
        "      ExtendedStatistic: p95\n      Period: 3600\n      EvaluationPeriods: 1\n"
        "      Threshold: !Ref InitDurationAlarmMs\n      ComparisonOperator: GreaterThanThreshold\n"
    )
    return "\n".join(
        [
            f"  {fn}:\n    Type: AWS::Serverless::Function\n{function_meta}    Properties:\n"
            f"      FunctionName: !Sub lambda-ml-layers-${{Stage}}-{kebab}\n"
            f"      Description: {stem} (scaffolded by inv new-function)\n"
            f"      CodeUri: ../services/{name}/\n      Handler: {name}.handler.lambda_handler\n"
            f"      Timeout: {timeout_s}\n      Layers:\n{layers}"
            f"      AutoPublishCodeSha256: !Ref {stem}{SHA_PARAMETER}\n"
            # A cap on the share of the account's concurrency one function can take (checkov CKV_AWS_115).
            "      ReservedConcurrentExecutions: 10\n"
            f"      Environment:\n        Variables:\n          POWERTOOLS_SERVICE_NAME: {kebab}\n",
            f"  {stem}LogGroup:\n    Type: AWS::Logs::LogGroup\n{log_meta}"
            "    DeletionPolicy: Delete\n    UpdateReplacePolicy: Delete\n    Properties:\n"
            f"      LogGroupName: !Sub /aws/lambda/lambda-ml-layers-${{Stage}}-{kebab}\n      RetentionInDays: 30\n",
            f"  {stem}InitDurationMetric:\n    Type: AWS::Logs::MetricFilter\n    Properties:\n"
            f"      LogGroupName: !Ref {stem}LogGroup\n"
            """      FilterPattern: '[report="REPORT", ..., init="Init", label="Duration:", init_ms, unit="ms"]'\n"""
            "      MetricTransformations:\n        - MetricNamespace: LambdaMLLayers/InitDuration\n"
            f"          MetricName: !Ref {fn}\n          MetricValue: $init_ms\n          Unit: Milliseconds\n",
            alarm("Errors", "raised an unhandled error", count.replace("{metric}", "Errors")),
            alarm("Throttles", "invocations were throttled", count.replace("{metric}", "Throttles")),
            alarm("Duration", f"p99 duration above 80% of its {timeout_s} s timeout", duration),
            alarm("InitDuration", "p95 init duration (cold start) above InitDurationAlarmMs over an hour", init),
        ]
    )


def function_outputs(name: str) -> str:
    stem = camel(name)
    return (
        f"  {stem}FunctionArn:\n    Value: !GetAtt {stem}Function.Arn\n"
        f"  {stem}AliasArn:\n    Value: !Ref {stem}Function.Alias\n"
    )
