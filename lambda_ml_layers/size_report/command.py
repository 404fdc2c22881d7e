"""`inv size-report`: the edges. Read today's build report and the base (a saved report.json or the
stage's current release), compare (diff.py), write the picture to build/size-report.html, return
the text to print."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from ..config.template import function_specs
from ..core.errors import ConfigError, SizeReportError
from ..core.paths import BuildPaths
from ..layer_trace.attribution import zip_files
from .contents import layer_contents
from .diff import compare
from .render import FORMATS, render
from .treemap import html_page


@dataclass(frozen=True)
class SizeReportRequest:
    root: Path
    stage: str | None = None  # compare with this stage's current release
    base: Path | None = None  # or with this saved report.json
    fmt: str = "table"


@dataclass(frozen=True)
class SizeReport:
    text: str  # in the requested format
    picture: Path


def read_report(path: Path, what: str, fix: str) -> dict[str, Any]:
    """A build report (report.py's JSON) from a file; anything else is a SizeReportError naming it."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise SizeReportError(f"{what} {path} does not exist. Fix: {fix}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SizeReportError(f"{what} {path} cannot be read as JSON ({exc}). Fix: {fix}") from None
    return checked_report(data, f"{what} {path}", fix)


LAYER_KEYS = ("name", "unzipped_bytes", "package_bytes")
FUNCTION_KEYS = ("name", "code_bytes", "layer_bytes", "total_bytes")


def report_problem(data: Any) -> str | None:
    """What keeps `data` from being compared as a build report (None: nothing)."""
    if not isinstance(data, dict) or not isinstance(data.get("layers"), list):
        return "is not a build report (no 'layers' list)"
    for kind, keys in (("layers", LAYER_KEYS), ("functions", FUNCTION_KEYS)):
        for index, entry in enumerate(data.get(kind) or []):
            if not isinstance(entry, dict):
                return f"{kind}[{index}] is not an object"
            missing = [key for key in keys if key not in entry]
            if missing:
                return f"{kind}[{index}] ({entry.get('name', 'unnamed')}) lacks {', '.join(missing)}"
            if kind == "layers" and not isinstance(entry["package_bytes"], dict):
                return f"layers[{index}] ({entry['name']}): package_bytes is not an object"
    return None


def checked_report(data: Any, where: str, fix: str) -> dict[str, Any]:
    """The report if it has the fields a comparison needs; else a SizeReportError naming what is wrong."""
    problem = report_problem(data)
    if problem:
        raise SizeReportError(f"{where} {problem}. Fix: {fix}")
    assert isinstance(data, dict)
    return data


def stage_base(root: Path, stage_name: str) -> tuple[dict[str, Any] | None, str]:
    """The build report stored with the stage's current release, and how to name it.
    A stage without releases gives None: the comparison is then against nothing, and says so."""
    # The deploy side pulls in boto3.
    from ..deploy.local_emulator import dead_emulator
    from ..deploy.releases import release_store

    store = release_store(root, stage_name, "inv size-report")
    try:
        history = store.history()
        current = history.current
        if current is None:
            if history.bad:
                return None, f"nothing (no record of stage {stage_name} can be read: see `inv releases`)"
            return None, f"nothing (stage {stage_name} has no release yet)"
        report = store.build_report(current)
    except (ClientError, BotoCoreError) as exc:
        died = dead_emulator(BuildPaths.of(root), store.session.endpoint_url, f"inv size-report --stage {stage_name}")
        if died is not None:
            raise died from None
        raise SizeReportError(
            f"Reading stage {stage_name!r}'s release history failed: {exc}. Fix: check the stage's credentials "
            f"and `inv releases --stage {stage_name}`."
        ) from None
    if report is None:
        raise SizeReportError(
            f"Release {current.number} of stage {stage_name!r} was recorded without a build report (deploys before "
            f"`inv size-report` existed stored none). Fix: pass a saved report with --base PATH, or deploy again "
            f"(`inv deploy --stage {stage_name}`) so the new release carries one."
        )
    where = f"the build report of release {current.number} of stage {stage_name}"
    label = f"release {current.number} of stage {stage_name}"
    unknown = history.unknown_latest()
    if unknown is not None:
        # The newest record cannot be read: compare with the newest that can, and say so.
        label += f" (release {unknown.number}'s record cannot be read: see `inv releases --stage {stage_name}`)"
    return checked_report(report, where, "deploy again to store a fresh one"), label


def previous_build(paths: BuildPaths, current: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The report of the good build before today's, for the same target (kept by each build), and
    how to name it; None when there is none yet, which the label says."""
    runtime, arch = current.get("runtime"), current.get("arch")
    if not isinstance(runtime, str) or not isinstance(arch, str):
        return None, "nothing (no --stage or --base given, and today's report names no target)"
    path = paths.previous_report(runtime, arch)
    if not path.exists():
        return None, f"nothing (no --stage or --base given, and no earlier good build of {runtime}/{arch} kept)"
    report = read_report(path, "The previous build's report", "rebuild (`inv build-layers`), or pass --base PATH.")
    return report, f"the previous build ({path.relative_to(paths.build.parent)})"


def built_contents(paths: BuildPaths, current: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each layer's packages split into parts, from today's built zips (a layer whose zip is not at
    hand, or not a zip, is left out of the nested picture; the rest of the report still stands)."""
    runtime, arch = current.get("runtime"), current.get("arch")
    if not isinstance(runtime, str) or not isinstance(arch, str):
        return {}
    contents = {}
    for layer in current.get("layers", []):
        path = paths.output_dir(runtime, arch) / f"{layer['name']}.zip"
        try:
            entries = zip_files(path)
        except (OSError, zipfile.BadZipFile):
            continue
        contents[layer["name"]] = layer_contents(entries)
    return contents


def function_layers(root: Path) -> dict[str, list[str]]:
    """Each function's layers in the template's order (empty when the template cannot be read: the
    bars then show the layers as one segment)."""
    try:
        return {spec.name: list(spec.layers) for spec in function_specs(root / "infra" / "template.yaml")}
    except (ConfigError, OSError):
        return {}


def write_atomically(path: Path, text: str) -> None:
    """A reader never sees half a page; a failure keeps the previous one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)


def size_report(request: SizeReportRequest) -> SizeReport:
    if request.fmt not in FORMATS:
        raise SizeReportError(f"--format must be one of {', '.join(FORMATS)}, not {request.fmt!r}.")
    if request.stage and request.base:
        raise SizeReportError("Give --stage or --base, not both: the build is compared with one base.")
    paths = BuildPaths.of(request.root)
    current = read_report(paths.default_report, "Today's build report", "build the layers first: `inv build-layers`.")
    base: dict[str, Any] | None
    if request.base:
        base = read_report(request.base, "The base report", "pass the report.json of an earlier build.")
        label = str(request.base)
    elif request.stage:
        base, label = stage_base(request.root, request.stage)
    else:
        base, label = previous_build(paths, current)
    diff = compare(current, base, label)
    page = html_page(current, base, diff, built_contents(paths, current), function_layers(request.root))
    write_atomically(paths.size_report_html, page)
    return SizeReport(render(diff, request.fmt), paths.size_report_html)
