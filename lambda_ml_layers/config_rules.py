"""What `layers/defaults.toml` and a `layer.toml` may hold, and the check of each value (pure).

Each check appends every problem it finds to `problems` (naming the file, the key and the
fix) and returns a usable value, so config.py can report everything wrong in one run.
"""

from __future__ import annotations

import difflib
import math
import string
from typing import Any

from .runtimes import ARCHES, LAMBDA_UNZIPPED_LIMIT, MB, RUNTIMES
from .strip_rules import StripRule

BYTECODE_POLICIES = ("source", "pyc", "sourceless")

BUILD_KEYS = ("runtime", "arch", "bytecode", "strip_shared_objects")
RULE_KEYS = {"name", "why", "directories", "files", "paths", "keep"}
STRIP_KEYS = {"protect", "rules"}
DEFAULTS_KEYS = {"build", "strip"}
LAYER_KEYS = {
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
AWS_SDK_KEYS = {"keep_services"}
VERIFY_KEYS = {"skip_imports"}
LAYER_TESTS_KEYS = {"allowed_import_failures"}

# infra/template.yaml names each layer `LayerName: !Sub lambda-ml-layers-${Stage}-<folder>`
# (tests/unit/test_config.py holds the template to it); Lambda allows letters, digits, - and _
# in a layer name, at most 64 characters, so the folder name must fit with every stage's prefix.
LAYER_NAME_PREFIX = "lambda-ml-layers-{stage}-"
LAMBDA_LAYER_NAME_MAX = 64
LAYER_NAME_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-_")


def check_keys(table: dict[str, Any], allowed: set[str], where: str, problems: list[str]) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f" Perhaps you meant {close[0]!r}?" if close else ""
            problems.append(f"{where}: unknown key {key!r}.{hint} Allowed: {', '.join(sorted(allowed))}.")


def table(raw: dict[str, Any], key: str, where: str, problems: list[str]) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        problems.append(f"{where}: {key!r} must be a table ([{key}]).")
        return {}
    return value


def strings(value: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}: must be a list of strings.")
        return ()
    return tuple(value)


def text(value: Any, where: str, problems: list[str]) -> str:
    if not isinstance(value, str):
        problems.append(f"{where} must be a string (text in quotes).")
        return ""
    return value


def strip_rules(strip: dict[str, Any], where: str, problems: list[str]) -> tuple[StripRule, ...]:
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
        check_keys(raw, RULE_KEYS, rule_where, problems)
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            problems.append(f"{rule_where}: needs a 'name'.")
            continue
        globs = {
            key: strings(raw.get(key, []), f"{rule_where} ({name}) {key}", problems)
            for key in ("directories", "files", "paths", "keep")
        }
        if not (globs["directories"] or globs["files"] or globs["paths"]):
            problems.append(f"{rule_where} ({name}): matches nothing; give directories, files or paths.")
        rules.append(StripRule(name=name, why=str(raw.get("why", "")), **globs))
    return tuple(rules)


def default_build_settings(build: dict[str, Any], where: str, problems: list[str]) -> dict[str, Any]:
    """defaults.toml's [build]: every setting must be there, since every layer inherits it."""
    missing = [key for key in BUILD_KEYS if key not in build]
    if missing:
        # One problem for one cause: an empty or truncated defaults.toml is not four wrong values.
        problems.append(
            f"{where} [build]: {', '.join(missing)} not set; every layer inherits them from here. "
            f'Fix: add them, e.g. [build] runtime = "python3.12", arch = "x86_64", '
            f'bytecode = "sourceless", strip_shared_objects = true.'
        )
    return build_settings(build, where, problems, {}, check_missing=False)


def build_settings(
    build: dict[str, Any], where: str, problems: list[str], inherited: dict[str, Any], check_missing: bool = True
) -> dict[str, Any]:
    check_keys(build, set(BUILD_KEYS), f"{where} [build]", problems)
    merged = {**inherited, **build}
    present = merged if check_missing else build
    if "runtime" in present and merged["runtime"] not in RUNTIMES:
        problems.append(f"{where} [build]: runtime {merged['runtime']!r} is not one of {', '.join(RUNTIMES)}.")
    if "arch" in present and merged["arch"] not in ARCHES:
        problems.append(f"{where} [build]: arch {merged['arch']!r} is not one of {', '.join(ARCHES)}.")
    if "bytecode" in present and merged["bytecode"] not in BYTECODE_POLICIES:
        problems.append(
            f"{where} [build]: bytecode {merged['bytecode']!r} is not one of {', '.join(BYTECODE_POLICIES)}."
        )
    if "strip_shared_objects" in present and not isinstance(merged["strip_shared_objects"], bool):
        problems.append(f"{where} [build]: strip_shared_objects must be true or false.")
    return merged


def budget(raw: dict[str, Any], key: str, where: str, problems: list[str]) -> int:
    value = raw.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        problems.append(f"{where}: {key!r} must be a positive number of MB (1 MB = 1,000,000 bytes).")
        return 0
    budget_bytes = int(value * MB)
    if budget_bytes > LAMBDA_UNZIPPED_LIMIT:
        problems.append(
            f"{where}: {key} = {value} is {budget_bytes:,} bytes, above Lambda's limit of "
            f"{LAMBDA_UNZIPPED_LIMIT:,} bytes unzipped for a function and all its layers. "
            f"Set {key} to at most {LAMBDA_UNZIPPED_LIMIT / MB:.0f}."
        )
    return budget_bytes


def kept_services(aws_sdk: dict[str, Any], where: str, problems: list[str]) -> tuple[str, ...] | None:
    """[aws_sdk] keep_services: None (key absent) leaves the AWS SDK's data untouched."""
    if "keep_services" not in aws_sdk:
        return None
    services = strings(aws_sdk["keep_services"], f"{where} [aws_sdk] keep_services", problems)
    if isinstance(aws_sdk["keep_services"], list) and not aws_sdk["keep_services"]:
        problems.append(
            f"{where} [aws_sdk]: keep_services is empty, so the layer would ship no AWS service at all "
            f"and every client would fail with UnknownServiceError. Fix: list the services the functions "
            f'call (e.g. keep_services = ["s3"]), or remove keep_services to keep every service.'
        )
    return services


def layer_name_problems(name: str, stages: list[str]) -> list[str]:
    """A layer folder's name must make a valid Lambda layer name on every stage."""
    problems = []
    bad = sorted({c for c in name if c not in LAYER_NAME_CHARACTERS})
    if not name or bad:
        shown = " ".join(repr(c) for c in bad)
        problems.append(
            f"layer folder name {name!r} has characters Lambda does not allow in a layer name ({shown}); "
            f"use only ASCII letters, digits, '-' and '_'. Fix: rename the folder (and its ContentUri in "
            f"infra/template.yaml)."
        )
    longest = max((LAYER_NAME_PREFIX.format(stage=stage) + name for stage in stages or [""]), key=len)
    excess = len(longest) - LAMBDA_LAYER_NAME_MAX
    if excess > 0:
        problems.append(
            f"layer folder name {name!r} makes the layer name {longest!r}, {len(longest)} characters; Lambda "
            f"allows at most {LAMBDA_LAYER_NAME_MAX}. Fix: shorten the folder name by {excess} characters "
            f"(and its ContentUri in infra/template.yaml)."
        )
    return problems
