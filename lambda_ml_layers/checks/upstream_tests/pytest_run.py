"""One run of one suite in the target interpreter, from one tree; results per test node id."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ...config.upstream_tests import Suite
from ...core.errors import BuildInterrupted
from .selection import pytest_args

IN_TARGET = Path(__file__).with_name("in_target")
RUN_PYTEST = IN_TARGET / "run_pytest.py"


@dataclass(frozen=True)
class NodeOutcome:
    outcome: str  # passed, failed, error, skipped, xfailed, xpassed
    error: str = ""  # the first error line
    text: str = ""  # the end of the traceback, to find what was missing


@dataclass
class SuiteRun:
    results: dict[str, NodeOutcome] = field(default_factory=dict)
    seconds: float = 0.0
    timed_out: bool = False
    exit_code: int = 0
    output_tail: str = ""

    def count(self, *outcomes: str) -> int:
        return sum(1 for r in self.results.values() if r.outcome in outcomes)


def merge_records(lines: list[str]) -> dict[str, NodeOutcome]:
    """The plugin's JSON lines -> one outcome per node id; an error in any phase wins over a pass."""
    results: dict[str, NodeOutcome] = {}
    for line in lines:
        record = json.loads(line)
        node, outcome = record["node"], record["outcome"]
        previous = results.get(node)
        if previous is not None and previous.outcome in ("failed", "error"):
            continue
        results[node] = NodeOutcome(outcome, record.get("error", ""), record.get("text", ""))
    return results


def run_suite(
    python: str,
    suite: Suite,
    layer_paths: list[str],
    site: Path,
    work: Path,
    fast: bool,
    label: str,
    prefix: tuple[str, ...] = (),
    workers: int = 1,
    environment: tuple[tuple[str, str], ...] = (),
) -> SuiteRun:
    """pytest over the suite's selection in `site` (the tree the layer paths point into);
    `prefix` goes before the interpreter (opt_mount.at_opt); `workers`: pytest-xdist processes;
    `environment`: variables set for the run (the same for both trees)."""
    results_file = work / f"{suite.name}-{label}-results.jsonl"
    results_file.unlink(missing_ok=True)
    # Neither the host's Python settings nor its pytest's (PYTEST_ADDOPTS, or pytest-xdist's worker
    # marker when this runs under xdist, which would silence the results plugin) reach the suite.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYTEST_"))}
    env["LL_UPSTREAM_RESULTS"] = str(results_file)
    # Some suites write to HOME or the current folder; both point into the scratch folder.
    env["HOME"] = str(work)
    # pytest-xdist starts its workers without -B; this keeps them from writing bytecode too.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(environment)
    command = [*prefix, python, "-I", "-B", str(RUN_PYTEST), json.dumps(layer_paths)]
    command += pytest_args(suite, str(site), fast, workers)
    run = SuiteRun()
    started = time.monotonic()
    with subprocess.Popen(
        command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    ) as process:
        try:
            output, _ = process.communicate(timeout=suite.budget_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # pytest and anything the tests started
            output, _ = process.communicate()
            run.timed_out = True
    run.seconds = time.monotonic() - started
    run.exit_code = process.returncode
    if process.returncode == -signal.SIGINT:
        raise BuildInterrupted("Interrupted.")
    run.output_tail = output.decode(errors="replace")[-3000:]
    if results_file.exists():
        run.results = merge_records(results_file.read_text(encoding="utf-8").splitlines())
    return run
