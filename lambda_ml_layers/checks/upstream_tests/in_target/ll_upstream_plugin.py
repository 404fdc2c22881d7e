"""pytest plugin loaded (`-p ll_upstream_plugin`) into the libraries' own suites, in the target interpreter.

1. Sourceless layers: a package folder there holds `__init__.pyc` and no `__init__.py`, so
   pytest would take `numpy/_core/tests` for a top-level package named `tests` and import
   its modules under the wrong names. pytest finds package roots with
   `_pytest.pathlib.resolve_package_path` (looked up by name at call time), so it is
   replaced by one that also counts `__init__.pyc`. Writing an `__init__.py` instead would
   shadow the shipped bytecode and test something else than the layer.
2. Results: each test's outcome and first error line, one JSON line per test, appended to
   the file named by LL_UPSTREAM_RESULTS as the run goes, so a run stopped by its time
   budget still reports what finished. Under pytest-xdist only the controller writes: it
   receives every worker's test reports and failed collections through the same hooks.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import _pytest.pathlib


def resolve_package_path(path: Path) -> Path | None:
    """pytest's own, with `__init__.pyc` counting as a package marker."""
    result = None
    for parent in itertools.chain((path,), path.parents):
        if parent.is_dir():
            if not ((parent / "__init__.py").is_file() or (parent / "__init__.pyc").is_file()):
                break
            if not parent.name.isidentifier():
                break
            result = parent
    return result


_pytest.pathlib.resolve_package_path = resolve_package_path


def first_error_line(text: str) -> str:
    """pytest marks the raised error's lines with 'E   '; else the last non-empty line."""
    lines = [line for line in text.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("E "):
            return line[1:].strip()[:300]
    return (lines[-1].strip() if lines else "")[:300]


def results_file() -> str | None:
    """Where to append records; None in a pytest-xdist worker (its controller records)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return None
    return os.environ.get("LL_UPSTREAM_RESULTS")


def pytest_runtest_logreport(report: Any) -> None:
    target = results_file()
    if not target:
        return
    failed = report.failed
    outcome = report.outcome
    if report.when != "call" and not failed and not report.skipped:
        return  # a passing setup or teardown says nothing; the call does
    if report.when != "call" and failed:
        outcome = "error"
    if hasattr(report, "wasxfail"):
        outcome = "xfailed" if report.skipped else "xpassed"
    record = {"node": report.nodeid, "when": report.when, "outcome": outcome}
    if failed:
        record["error"] = first_error_line(report.longreprtext)
        record["text"] = report.longreprtext[-4000:]
    with open(target, "a", encoding="utf-8") as results:
        results.write(json.dumps(record) + "\n")


def pytest_collectreport(report: Any) -> None:
    """A test module that fails to import is a failure of every test in it: record it."""
    target = results_file()
    if not target or not report.failed:
        return
    record = {
        "node": report.nodeid,
        "when": "collect",
        "outcome": "error",
        "error": first_error_line(report.longreprtext),
        "text": report.longreprtext[-4000:],
    }
    with open(target, "a", encoding="utf-8") as results:
        results.write(json.dumps(record) + "\n")
