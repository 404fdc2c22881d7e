"""The pre-deploy security gate: checkov on the SAM template, offline; any failed check stops the deploy.

A finding is either fixed in the template or suppressed on its resource, with a reason:

    Metadata:
      checkov:
        skip:
          - id: CKV_AWS_117
            comment: why this check does not apply here

A suppression without a reason counts as a failure. checkov runs in its own venv
(.venv-checkov, its pins clash with the tooling's), with no network: no API key, no platform
download, no version check, and no .checkov.yaml or CKV_* setting of the caller's that could
skip checks. Only the template itself decides what is suppressed.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.command_runner import call, find_tool
from ..core.errors import SecurityScanError, ToolMissing

CHECKOV_ENV = "CHECKOV"
VENV_CHECKOV = Path(".venv-checkov/bin/checkov")
BOOTSTRAP = "python3 scripts/bootstrap.py"
TIMEOUT_SECONDS = 300
# What checkov writes for a skip that has no comment.
NO_REASON = "No comment provided"
FIX = (
    "Fix: change the resource in the template so the check passes, or, if the check does not apply, "
    "add to the resource's Metadata\n"
    "    checkov:\n"
    "      skip:\n"
    "        - id: CKV_AWS_xx\n"
    '          comment: "why it does not apply to this resource"'
)
UNSCANNED_FIX = "Fix: make it a valid CloudFormation/SAM template (`cfn-lint <template>` names the error)."
# The caller's environment must not change what is checked or reach the network.
_DROPPED_PREFIXES = ("BC_", "CKV_", "CHECKOV_", "PRISMA_")
_OFFLINE = {
    "BC_SKIP_MAPPING": "TRUE",  # no download of the platform's guidelines and id mappings
    "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",  # no PyPI query for a newer checkov
    "LOG_LEVEL": "WARNING",
}


@dataclass(frozen=True)
class Finding:
    check_id: str
    check_name: str
    resource: str  # checkov's "<Type>.<LogicalId>", e.g. "AWS::SNS::Topic.AlarmTopic"
    reason_or_guideline: str  # a skip's comment; a failure's guideline URL ("" offline)
    line: int | None = None

    @property
    def logical_id(self) -> str:
        return self.resource.rpartition(".")[2]

    def describe(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"{self.check_id} {self.check_name} on {self.resource}{where}"


@dataclass(frozen=True)
class ScanResult:
    passed: int
    failed: tuple[Finding, ...]
    skipped: tuple[Finding, ...]
    parsing_errors: tuple[str, ...] = ()
    resource_count: int = 0

    @property
    def unexplained_skips(self) -> tuple[Finding, ...]:
        return tuple(s for s in self.skipped if not has_reason(s))

    def summary(self) -> str:
        return f"checkov: {self.passed} passed, {len(self.skipped)} skipped with reasons"


def has_reason(skip: Finding) -> bool:
    reason = skip.reason_or_guideline.strip()
    return bool(reason) and reason != NO_REASON


def find_checkov(root: Path, env: Mapping[str, str] | None = None) -> Path:
    """$CHECKOV, else the project's .venv-checkov, else checkov on PATH."""
    return find_tool(
        "checkov",
        "checkov",
        CHECKOV_ENV,
        root / VENV_CHECKOV,
        "the deploy scans the template with it before uploading anything",
        f"run `{BOOTSTRAP}` (it creates .venv-checkov from requirements/checkov.txt).",
        SecurityScanError,
        env,
    )


def parse_checkov_json(text: str) -> ScanResult:
    """checkov's `-o json` report: one framework's dict, a list of them, or a bare summary (nothing scanned)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SecurityScanError(f"checkov's output is not JSON ({exc}); it starts with: {text[:200]!r}") from exc
    reports = data if isinstance(data, list) else [data]
    passed, resources = 0, 0
    failed: list[Finding] = []
    skipped: list[Finding] = []
    parsing_errors: list[str] = []
    for report in reports:
        if not isinstance(report, dict):
            raise SecurityScanError(f"Unexpected checkov report: {str(report)[:200]}")
        if "results" not in report:  # checkov found nothing to scan: only a summary
            if "passed" not in report:
                raise SecurityScanError(f"Unexpected checkov report, neither results nor summary: {str(report)[:200]}")
            summary: dict[str, Any] = report
            results: dict[str, Any] = {}
        else:
            summary, results = report.get("summary", {}), report["results"]
        passed += int(summary.get("passed", len(results.get("passed_checks", []))))
        resources += int(summary.get("resource_count", 0))
        failed.extend(_finding(c, "guideline") for c in results.get("failed_checks", []))
        skipped.extend(_finding(c, "suppress_comment") for c in results.get("skipped_checks", []))
        parsing_errors.extend(str(p) for p in results.get("parsing_errors", []))
    return ScanResult(passed, tuple(failed), tuple(skipped), tuple(parsing_errors), resources)


def _finding(check: dict[str, Any], reason_key: str) -> Finding:
    if reason_key == "suppress_comment":
        reason = check.get("check_result", {}).get("suppress_comment")
    else:
        reason = check.get("guideline")
    lines = check.get("file_line_range") or [None]
    return Finding(
        check_id=str(check.get("check_id", "?")),
        check_name=str(check.get("check_name", "")),
        resource=str(check.get("resource", "?")),
        reason_or_guideline=str(reason or ""),
        line=lines[0] if isinstance(lines[0], int) else None,
    )


def checkov_command(template: Path, checkov: Path) -> list[str]:
    # Not --quiet: it leaves skipped checks out of the report, and their reasons are checked.
    return [
        str(checkov),
        "--file",
        str(template),
        "--framework",
        "cloudformation",
        "--output",
        "json",
        "--compact",
        "--skip-download",
    ]


def checkov_environment(base: Mapping[str, str], home: Path) -> dict[str, str]:
    """The caller's environment without anything that could skip checks or reach the platform."""
    env = {k: v for k, v in base.items() if not k.startswith(_DROPPED_PREFIXES)}
    # checkov reads .checkov.yaml from the working directory and from $HOME: point both at an empty folder.
    env["HOME"] = str(home)
    env.update(_OFFLINE)
    return env


def scan_template(template: Path, checkov: Path) -> ScanResult:
    """Run checkov on one CloudFormation/SAM template, offline, and parse its report."""
    template = template.resolve()
    if not template.is_file():
        raise SecurityScanError(f"No template to scan at {template}.")
    # checkov runs in a scratch folder, so a relative path to it must be made absolute first.
    command = checkov_command(template, checkov.absolute() if checkov.exists() else checkov)
    with tempfile.TemporaryDirectory(prefix="checkov-") as scratch:
        try:
            # split_stderr: stdout is the JSON report; checkov logs to stderr.
            result = call(
                command,
                cwd=Path(scratch),
                env=checkov_environment(os.environ, Path(scratch)),
                timeout=TIMEOUT_SECONDS,
                split_stderr=True,
                error=None,
            )
        except (OSError, ToolMissing) as exc:
            raise SecurityScanError(f"Cannot run checkov ({checkov}): {exc}\n  Fix: run `{BOOTSTRAP}`.") from exc
    if result.timed_out:
        raise SecurityScanError(f"checkov did not finish within {TIMEOUT_SECONDS} s: {' '.join(command)}")
    # 0: nothing failed, 1: some check failed; anything else is checkov itself failing.
    if result.returncode not in (0, 1) or not result.stdout.strip():
        tail = "\n".join(result.output.strip().splitlines()[-15:])
        raise SecurityScanError(
            f"checkov failed (exit {result.returncode}) scanning {template}:\n{tail}\n  Command: {' '.join(command)}"
        )
    return parse_checkov_json(result.stdout)


def check_template_security(template: Path, checkov: Path) -> ScanResult:
    """Scan; raise listing every failed check and every reasonless skip, else return the result."""
    result = scan_template(template, checkov)
    problems = gate_problems(result, template)
    if problems:
        body = "\n".join(f"  - {p}" for p in problems)
        fix = FIX if result.failed or result.unexplained_skips else UNSCANNED_FIX
        raise SecurityScanError(
            f"The security scan of {template} found {len(problems)} problem(s); nothing was deployed.\n{body}\n{fix}"
        )
    return result


def gate_problems(result: ScanResult, template: Path) -> list[str]:
    """Everything that stops the deploy, one line each."""
    problems = [f"{p}: checkov could not parse it, so it was not scanned" for p in result.parsing_errors]
    if not result.parsing_errors and result.resource_count == 0:
        problems.append(f"checkov found no CloudFormation resources in {template}, so nothing was scanned")
    problems += [f.describe() for f in result.failed]
    problems += [
        f"{s.describe()}: skipped without a reason (add a comment to the skip)" for s in result.unexplained_skips
    ]
    return problems
