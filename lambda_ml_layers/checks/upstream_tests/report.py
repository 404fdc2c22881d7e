"""The session's own report: counts per suite, each stripped-only failure, declared differences."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ...core.toolchains import UNDER_QEMU
from .compare import SuiteComparison


def report_data(
    runtime: str,
    arch: str,
    fast: bool,
    layers: dict[str, list[SuiteComparison]],
    at_opt: bool = True,
    emulated: bool = False,
    not_tested: list[str] | None = None,
) -> dict[str, object]:
    """`emulated`: the suites ran in another arch's interpreter under qemu, so their seconds are labelled
    and mean nothing beside native ones; `not_tested`: layers with suites whose zip was not built."""
    return {
        "runtime": runtime,
        "arch": arch,
        "selection": "fast (CI subset)" if fast else "whole",
        "stripped_tree_at": "/opt (private mount namespace)" if at_opt else "a scratch folder (no mount namespace)",
        "interpreter": f"{arch}, {UNDER_QEMU}" if emulated else "native",
        "timings_emulated": emulated,
        "not_tested": not_tested or [],
        "layers": {
            layer: [
                {
                    "suite": c.suite,
                    "passed_unstripped": c.passed_unstripped,
                    "passed_stripped": c.passed_stripped,
                    "stripped_only_failures": len(c.stripped_only),
                    "failed_unstripped": c.failed_unstripped,
                    "expected_differences": len(c.expected),
                    "seconds_unstripped": round(c.seconds[0], 1),
                    "seconds_stripped": round(c.seconds[1], 1),
                    "failures": [{"test": r.node, "error": r.error, "blame": r.blame} for r in c.stripped_only],
                    "expected": c.expected,
                    "problems": c.problems,
                }
                for c in comparisons
            ]
            for layer, comparisons in layers.items()
        },
    }


def report_markdown(data: dict[str, object]) -> str:
    emulated = bool(data.get("timings_emulated"))
    seconds = f"seconds ({UNDER_QEMU})" if emulated else "seconds"
    lines = [
        f"# Upstream test suites ({data['runtime']}, {data['arch']}, {data['selection']} selection)",
        "",
        f"Stripped layers run at {data['stripped_tree_at']}; the unstripped install of the same lock beside them.",
        *(
            [f"Every test ran in the {data['arch']} interpreter, {UNDER_QEMU} (no ratio with native seconds)."]
            if emulated
            else []
        ),
        "",
        "| layer | suite | passed unstripped | passed stripped | stripped-only failures | expected differences "
        f"| failed unstripped too | {seconds} (unstripped / stripped) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    details = []
    for layer, suites in data["layers"].items():  # type: ignore[attr-defined]
        for s in suites:
            lines.append(
                f"| {layer} | {s['suite']} | {s['passed_unstripped']:,} | {s['passed_stripped']:,} | "
                f"{s['stripped_only_failures']} | {s['expected_differences']} | {s['failed_unstripped']} | "
                f"{s['seconds_unstripped']:.0f} / {s['seconds_stripped']:.0f} |"
            )
            details += [f"- FAIL `{f['test']}`: {f['error']} (removed by: {f['blame']})" for f in s["failures"]]
            details += [f"- expected `{node}`: {why}" for node, why in s["expected"].items()]
            details += [f"- problem: {p}" for p in s["problems"]]
    details += [f"- not tested: {line}" for line in data.get("not_tested", [])]  # type: ignore[attr-defined]
    return "\n".join([*lines, "", *details, ""])


def write_report(path: Path, data: dict[str, object]) -> None:
    """JSON at `path`, Markdown beside it; each written whole, then renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for target, text in ((path, json.dumps(data, indent=2)), (path.with_suffix(".md"), report_markdown(data))):
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_text(text + "\n", encoding="utf-8")
        os.replace(temporary, target)
