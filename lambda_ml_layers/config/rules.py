"""What `layers/defaults.toml` and a `layer.toml` may hold, and the check of each value (pure).

Each check appends every problem it finds to `problems` (naming the file, the key and the
fix) and returns a usable value, so project.py can report everything wrong in one run.
"""

from __future__ import annotations

import math
import string
from typing import Any

from ..core.runtimes import ARCHES, LAMBDA_UNZIPPED_LIMIT, MB, RUNTIMES
from ..core.suggestions import perhaps_you_meant
from .strip_rules import StripRule
from .upstream_tests import Suite, UpstreamTests

BYTECODE_POLICIES = ("source", "pyc", "sourceless")

DOCSTRING_OPTIONS = ("keep", "strip")

BUILD_KEYS = ("runtime", "arch", "bytecode", "strip_shared_objects")
# May be left out of defaults.toml: the default is written beside the setting's check.
OPTIONAL_BUILD_KEYS = ("docstrings", "relayout_shared_objects")
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
    "upstream_tests",
    "prune",
}
AWS_SDK_KEYS = {"keep_services"}
VERIFY_KEYS = {"skip_imports"}
LAYER_TESTS_KEYS = {"allowed_import_failures"}
UPSTREAM_TESTS_KEYS = {"suites", "expected_failures", "arch_expected_failures"}
SUITE_KEYS = {"name", "paths", "markers", "budget_s", "fast", "deselect"}

# infra/template.yaml names each layer `LayerName: !Sub lambda-ml-layers-${Stage}-<folder>`
# (tests/unit/test_config.py holds the template to it); Lambda allows letters, digits, - and _
# in a layer name, at most 64 characters, so the folder name must fit with every stage's prefix.
LAYER_NAME_PREFIX = "lambda-ml-layers-{stage}-"
LAMBDA_LAYER_NAME_MAX = 64
LAYER_NAME_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-_")


def check_keys(table: dict[str, Any], allowed: set[str], where: str, problems: list[str]) -> None:
    for key in table:
        if key not in allowed:
            hint = perhaps_you_meant(key, sorted(allowed))
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
        rules.append(StripRule(name=name, why=str(raw.get("why", "")), defined_in=where.rsplit("/", 1)[-1], **globs))
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
    check_keys(build, {*BUILD_KEYS, *OPTIONAL_BUILD_KEYS}, f"{where} [build]", problems)
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
    for key in ("strip_shared_objects", "relayout_shared_objects"):
        if key in present and not isinstance(merged[key], bool):
            problems.append(f"{where} [build]: {key} must be true or false.")
    problems += docstring_problems(merged, present, where)
    return merged


def docstring_problems(merged: dict[str, Any], present: dict[str, Any], where: str) -> list[str]:
    """[build] docstrings: "keep" (default) or "strip", which needs bytecode to strip them from."""
    if "docstrings" not in present:
        return []
    value = merged["docstrings"]
    if value not in DOCSTRING_OPTIONS:
        return [
            f'{where} [build]: docstrings {value!r} is not one of {", ".join(DOCSTRING_OPTIONS)}. Fix: "strip" '
            f'compiles the bytecode without docstrings (asserts kept), "keep" leaves them.'
        ]
    if value == "strip" and merged.get("bytecode") == "source":
        return [
            f'{where} [build]: docstrings = "strip" needs bytecode to strip them from, but bytecode = "source" '
            f'ships source only. Fix: set bytecode = "sourceless" or "pyc", or docstrings = "keep".'
        ]
    return []


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


def upstream_tests(raw: dict[str, Any], where: str, problems: list[str]) -> UpstreamTests:
    """[upstream_tests]: [[upstream_tests.suites]] (name, paths, markers, budget_s, fast, deselect)
    and expected_failures (node id or prefix -> reason)."""
    section = table(raw, "upstream_tests", where, problems)
    where = f"{where} [upstream_tests]"
    check_keys(section, UPSTREAM_TESTS_KEYS, where, problems)
    suites = []
    raw_suites = section.get("suites", [])
    if not isinstance(raw_suites, list) or not all(isinstance(s, dict) for s in raw_suites):
        problems.append(f"{where}: 'suites' must be an array of tables ([[upstream_tests.suites]]).")
        raw_suites = []
    for index, suite in enumerate(raw_suites):
        suite_where = f"{where} suite #{index + 1} ({suite.get('name', 'unnamed')})"
        check_keys(suite, SUITE_KEYS, suite_where, problems)
        name = text(suite.get("name", ""), f"{suite_where}: 'name'", problems)
        paths = strings(suite.get("paths", []), f"{suite_where} paths", problems)
        if not name or not paths:
            problems.append(f'{suite_where}: needs a name and paths, e.g. name = "numpy", paths = ["numpy"].')
        budget_s = suite.get("budget_s")
        if not isinstance(budget_s, int) or isinstance(budget_s, bool) or budget_s <= 0:
            problems.append(f"{suite_where}: budget_s must be a positive whole number of seconds (one run's limit).")
            budget_s = 0
        for path in (*paths, *suite.get("fast", []), *suite.get("deselect", [])):
            if isinstance(path, str) and (path.startswith("/") or ".." in path.split("/")):
                problems.append(f"{suite_where}: {path!r} must be relative to the layer's python/ folder.")
        suites.append(
            Suite(
                name=name,
                paths=paths,
                markers=text(suite.get("markers", ""), f"{suite_where}: 'markers'", problems),
                budget_s=budget_s,
                fast=strings(suite.get("fast", []), f"{suite_where} fast", problems),
                deselect=strings(suite.get("deselect", []), f"{suite_where} deselect", problems),
            )
        )
    shared = table(section, "expected_failures", where, problems)
    expected = _expected_failures(shared, f"{where} expected_failures", problems)
    by_arch = {}
    for arch, declared in table(section, "arch_expected_failures", where, problems).items():
        arch_where = f"{where} arch_expected_failures.{arch}"
        if arch not in ARCHES:
            problems.append(f"{arch_where}: {arch!r} is not an architecture; use one of {', '.join(ARCHES)}.")
        elif not isinstance(declared, dict):
            problems.append(f"{arch_where}: must be a table of test -> reason, one per arch.")
        else:
            by_arch[arch] = _expected_failures(declared, arch_where, problems)
    return UpstreamTests(tuple(suites), expected, by_arch)


def _expected_failures(declared: dict[str, Any], where: str, problems: list[str]) -> dict[str, str]:
    if not all(isinstance(v, str) and v.strip() for v in declared.values()):
        problems.append(f"{where}: give each test a reason (a string).")
    return {str(k): str(v) for k, v in declared.items()}
