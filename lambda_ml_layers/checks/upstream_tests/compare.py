"""Stripped against unstripped, per test, and which strip rule removed what a test needed (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ...core.layer_tree import module_name
from .pytest_run import NodeOutcome, SuiteRun
from .selection import expected_reason

PASSING = ("passed", "xfailed", "skipped")  # what the test's own authors count as a pass
FAILING = ("failed", "error", "xpassed")


@dataclass(frozen=True)
class Regression:
    node: str
    error: str  # the first error line, stripped
    blame: str  # the strip rule or build setting that removed what the test needed


@dataclass
class SuiteComparison:
    suite: str
    passed_unstripped: int = 0
    passed_stripped: int = 0
    failed_unstripped: int = 0  # failing before any stripping: not ours, not counted against the layer
    stripped_only: list[Regression] = field(default_factory=list)
    expected: dict[str, str] = field(default_factory=dict)  # node -> declared reason
    problems: list[str] = field(default_factory=list)  # budget, crashed runs
    seconds: tuple[float, float] = (0.0, 0.0)  # unstripped, stripped

    @property
    def ok(self) -> bool:
        return not self.stripped_only and not self.problems


# Errors that mean the code's source or docstrings were not there, whatever the file.
_SOURCE_SIGNS = ("could not get source code", "source code not available", "could not find class definition")
_DOCSTRING_SIGNS = ("__doc__", "docstring")
_MISSING_MODULE = re.compile(r"No module named '([\w.]+)'")


def _removed_by(rule: str, rel: str) -> str:
    # [prune] is no strip rule: its removals name the layer's [prune] section (build/pruning/step.py).
    return f"{rule} (removed {rel})" if rule.startswith("[prune]") else f"strip rule {rule!r} (removed {rel})"


def blame(text: str, removed: dict[str, str], settings: dict[str, str]) -> str:
    """The rule that removed a file or module the error names; else a build setting the error
    points at (sourceless bytecode, docstrings stripped); else 'unknown'."""
    for rel, rule in removed.items():
        if rel in text:
            return _removed_by(rule, rel)
    for missing in _MISSING_MODULE.findall(text):
        folder = missing.replace(".", "/") + "/"  # a package whose files were all removed
        for rel, rule in removed.items():
            if module_name(rel) == missing or rel.startswith(folder):
                return _removed_by(rule, rel)
    lowered = text.lower()
    if "docstrings" in settings and any(sign in lowered for sign in _DOCSTRING_SIGNS):
        return settings["docstrings"]
    if "bytecode" in settings and any(sign in lowered for sign in _SOURCE_SIGNS):
        return settings["bytecode"]
    return "unknown: no removed file is named in the error; compare the two trees"


def compare_suite(
    suite: str,
    reference: SuiteRun,
    stripped: SuiteRun,
    expected: dict[str, str],
    removed: dict[str, str],
    settings: dict[str, str],
) -> SuiteComparison:
    """Fail only on tests that pass unstripped and fail (or vanish) stripped, bar declared ones."""
    result = SuiteComparison(suite, seconds=(reference.seconds, stripped.seconds))
    result.passed_unstripped = reference.count(*PASSING)
    result.passed_stripped = stripped.count(*PASSING)
    for name, run in (("unstripped", reference), ("stripped", stripped)):
        if run.timed_out:
            result.problems.append(
                f"{suite}: the {name} run went over its time budget ({run.seconds:.0f}s); raise budget_s in "
                f"[[upstream_tests.suites]] or narrow its paths."
            )
        elif not run.results:
            result.problems.append(
                f"{suite}: the {name} run reported no test (exit {run.exit_code}):\n{run.output_tail}"
            )
    for node, before in sorted(reference.results.items()):
        # Not run stripped: its module failed to import there (that error explains it), or the run stopped.
        module_error = stripped.results.get(node.split("::")[0])
        # A node that never ran (a conftest failed to import, say): the run's own output says why.
        never_ran = NodeOutcome("error", "did not run stripped", stripped.output_tail)
        after = stripped.results.get(node) or module_error or never_ran
        if before.outcome not in PASSING:
            result.failed_unstripped += 1
            continue
        if after.outcome in PASSING:
            continue
        if stripped.timed_out and node not in stripped.results:
            continue  # reported once, as the budget problem
        reason = expected_reason(node, expected)
        if reason is not None:
            result.expected[node] = reason
            continue
        result.stripped_only.append(Regression(node, after.error, blame(after.text or after.error, removed, settings)))
    # A module that imports unstripped but not stripped fails collection: its tests never ran.
    for node, after in sorted(stripped.results.items()):
        if node not in reference.results and after.outcome in FAILING and expected_reason(node, expected) is None:
            result.stripped_only.append(Regression(node, after.error, blame(after.text, removed, settings)))
    return result


def unused_expectations(expected: dict[str, str], comparisons: list[SuiteComparison]) -> list[str]:
    """Declared expected failures that no test of a whole run needed: stale once what they name
    is kept, and worth removing so they hide nothing later (pure)."""
    needed = [node for c in comparisons for node in c.expected]
    return sorted(key for key in expected if not any(expected_reason(node, {key: key}) for node in needed))
