"""Every shared object in a published zip is built for the zip's architecture, stripped, and
loadable with Lambda's 4 KiB pages (each PT_LOAD's offset and address agree modulo 4096).

Checked on the zips themselves, after the build, so it holds whatever wrote them: a wheel for
the wrong machine, or a strip that did not happen (no aarch64 binutils on the build machine),
fails here. The only unstripped objects allowed are those the build's own shared-objects step
kept on purpose (it names each, with why: it did not load once stripped, or never loaded).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..build.elf_layout import load_problems
from ..build.shared_objects import KEPT_UNSTRIPPED, foreign_objects, has_symbol_table, is_elf, is_shared_object
from ..core.errors import LayerTestFailed
from ..core.layer_tree import walk_files
from ..core.layer_zip import extract
from ..core.paths import BuildPaths
from ..core.runtimes import ARCHES
from .layer_test_plan import build_command


def kept_on_purpose(layer_report: dict[str, Any]) -> set[str]:
    """Paths (under python/) the build's shared-objects step restored unstripped, from its notes."""
    steps = layer_report.get("steps", [])
    notes = [n for s in steps if isinstance(s, dict) and s.get("step") == "shared-objects" for n in s.get("notes", [])]
    return {n.removeprefix(KEPT_UNSTRIPPED).split(" (", 1)[0] for n in notes if n.startswith(KEPT_UNSTRIPPED)}


def binary_problems(site: Path, machine: str, kept: set[str]) -> list[str]:
    """Pure over an extracted python/ folder: each shared object for another machine, unstripped
    without the build having said why, or laid out so that the loader would refuse it."""
    foreign = foreign_objects(site, machine)
    problems = [f"{entry.rel}: built for {entry.machine}, not {machine}" for entry in foreign]
    foreign_rels = {entry.rel for entry in foreign}  # wrong whether stripped or not: said once
    for rel, _ in walk_files(site):
        path = site / rel
        if not is_shared_object(rel) or rel in foreign_rels or not is_elf(path):
            continue
        if rel not in kept and has_symbol_table(path):
            problems.append(f"{rel}: not stripped (it still has its .symtab), and the build did not say why")
        problems += [f"{rel}: would not load with 4 KiB pages: {why}" for why in load_problems(path.read_bytes())]
    return problems


def check_zip_binaries(
    paths: BuildPaths, runtime: str, arch: str, say: Callable[[str], None] = print
) -> dict[str, int]:
    """Check each published zip of the target; layer -> shared objects checked. Raises naming every problem."""
    report = json.loads(paths.report(runtime, arch).read_text())
    checked: dict[str, int] = {}
    problems: list[str] = []
    for layer in report["layers"]:
        zip_path = paths.output_dir(runtime, arch) / f"{layer['name']}.zip"
        with tempfile.TemporaryDirectory(prefix="zip-binaries-") as temp:
            extract(zip_path, Path(temp))
            site = Path(temp) / "python"
            found = binary_problems(site, ARCHES[arch], kept_on_purpose(layer))
            checked[layer["name"]] = sum(1 for rel, _ in walk_files(site) if is_shared_object(rel))
        problems += [f"  - {zip_path.name}: {problem}" for problem in found]
        say(f"{layer['name']} ({runtime}, {arch}): {checked[layer['name']]} shared objects, {len(found)} problems")
    if problems:
        raise LayerTestFailed(
            f"Shared objects in {paths.output_dir(runtime, arch)} that Lambda's {arch} would reject or that "
            f"were left unstripped:\n" + "\n".join(problems) + "\n  Fix: run `python3 scripts/bootstrap.py` as "
            f"root (aarch64 binutils and qemu for arm64), then `{build_command(runtime, arch)} --force`; "
            f"one that would not load with 4 KiB pages and stays so is edited by no build step (the wheel "
            f"ships it so): pin another release of its package."
        )
    return checked
