"""Built layers as records, and publishing them into build/ once every gate has passed.

A `LayerBuild` is what the gates, the report and the cache see of one built layer. Publishing
copies the zips, their manifests and the report into place in two phases: everything is first
written beside its destination, then renamed into place in one quick pass that Ctrl-C cannot
cut, so the published folders (paths.BuildPaths) only ever show one whole good build.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..core.layer_zip import sha256_of
from ..core.notices import Notice
from ..core.paths import BuildPaths
from ..core.write_errors import naming


@dataclass(frozen=True)
class LayerBuild:
    """A built layer as the report and the gates see it (also its cache manifest)."""

    name: str
    runtime: str
    arch: str
    key: str
    sha256: str
    files: int
    unzipped_bytes: int
    zipped_bytes: int
    budget_bytes: int
    target_bytes: int | None
    packages: dict[str, str]
    provided_by_base: dict[str, str]
    package_bytes: dict[str, int]
    steps: list[dict[str, Any]]
    verified: bool
    warnings: tuple[Notice, ...] = ()  # checks that could not run, e.g. verification on another arch
    zip_path: str = ""
    cache_hit: bool = False
    seconds: float = 0.0

    @property
    def verification(self) -> str:
        """'verified', or 'not verified: why': the one phrase progress and report both show."""
        if self.verified:
            return "verified"
        why = [note for step in self.steps if step.get("step") == "verify" for note in step.get("notes", [])]
        return f"not verified: {'; '.join(why)}" if why else "not verified"

    def manifest(self) -> dict[str, Any]:
        data = asdict(self)
        for transient in ("zip_path", "cache_hit", "seconds"):
            data.pop(transient)
        data["warnings"] = [notice.to_dict() for notice in self.warnings]
        return data

    @classmethod
    def from_manifest(cls, data: dict[str, Any], zip_path: Path, cache_hit: bool, seconds: float) -> LayerBuild:
        fields = {**data, "warnings": tuple(Notice.from_dict(n) for n in data.get("warnings", []))}
        return cls(**fields, zip_path=str(zip_path), cache_hit=cache_hit, seconds=seconds)


def published_builds(output_dir: Path, expected_keys: dict[str, str]) -> dict[str, LayerBuild]:
    """Layers published earlier for this target whose inputs still match: a zip from an older lock
    or older rules would make the function totals lie, so it is not used."""
    found = {}
    for manifest in sorted(output_dir.glob("*.json")):
        zip_path = manifest.with_suffix(".zip")
        try:
            build = LayerBuild.from_manifest(json.loads(manifest.read_text()), zip_path, True, 0.0)
        except (ValueError, TypeError, KeyError, OSError):
            continue  # unreadable or from an older engine: as good as absent
        # A damaged zip (its bytes no longer what the manifest records) is as good as absent too.
        if zip_path.exists() and expected_keys.get(build.name) == build.key and sha256_of(zip_path) == build.sha256:
            found[build.name] = build
    return found


@dataclass
class Publication:
    """Files staged beside their destinations (`.name.part`), renamed into place by `commit`."""

    staged: list[tuple[Path, Path]] = field(default_factory=list)  # (staged file, destination)
    removals: list[Path] = field(default_factory=list)  # files deleted by `commit`

    def remove(self, path: Path) -> None:
        """Delete `path` on commit (nothing happens if the publication is discarded)."""
        self.removals.append(path)

    def copy(self, source: Path, destination: Path, sha256: str | None = None) -> None:
        """Stage a copy of `source`, unless `destination` already holds the same bytes."""
        if destination.exists() and sha256 is not None and sha256_of(destination) == sha256:
            return
        temp = self._temp(destination)
        with naming(destination, replace=True):
            shutil.copyfile(source, temp)
        temp.chmod(0o644)

    def text(self, text: str, destination: Path) -> None:
        """Stage a text file, unless `destination` already says exactly that."""
        if destination.exists() and destination.read_text() == text:
            return
        temp = self._temp(destination)
        with naming(destination, replace=True):
            temp.write_text(text)

    def _temp(self, destination: Path) -> Path:
        with naming(destination, replace=True):  # the user knows the destination, not the staged name
            destination.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".part")
        os.close(fd)
        self.staged.append((Path(name), destination))
        return Path(name)

    def commit(self) -> None:
        """Rename every staged file into place. A Ctrl-C during these few renames comes too late
        to stop the build: it is ignored, and the build finishes as the good build it is."""
        with _ctrl_c_ignored():
            # Removals first: on a read-only folder they fail before anything was renamed.
            for path in self.removals:
                path.unlink(missing_ok=True)
            for temp, destination in self.staged:
                os.replace(temp, destination)
        self.staged.clear()
        self.removals.clear()

    def discard(self) -> None:
        for temp, _ in self.staged:
            temp.unlink(missing_ok=True)
        self.staged.clear()
        self.removals.clear()


@contextmanager
def publishing() -> Iterator[Publication]:
    """Stage inside the block; on leaving it normally everything is committed, otherwise nothing."""
    publication = Publication()
    try:
        yield publication
        publication.commit()
    finally:
        publication.discard()


def stage_layer(publication: Publication, build: LayerBuild, output_dir: Path) -> None:
    """<layer>.zip in the target's output_dir (paths.BuildPaths) and its manifest beside it."""
    publication.copy(Path(build.zip_path), output_dir / f"{build.name}.zip", build.sha256)
    manifest = json.dumps(build.manifest(), indent=2, sort_keys=True)
    publication.text(manifest, output_dir / f"{build.name}.json")


@contextmanager
def _ctrl_c_ignored() -> Iterator[None]:
    """Ignore SIGINT for the block (only the main thread can set a handler; others need not)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def stale_outputs(output_dir: Path, layer_names: list[str]) -> list[Path]:
    """Published zips and manifests of layers the project no longer has: left in place they are
    easy to deploy by mistake. Layers merely left out of this build (--layer) are not stale."""
    if not output_dir.is_dir():
        return []
    return sorted(
        path
        for path in output_dir.iterdir()
        if path.suffix in (".zip", ".json") and not path.name.startswith(".") and path.stem not in layer_names
    )


def publish_build(
    paths: BuildPaths,
    runtime: str,
    arch: str,
    builds: list[LayerBuild],
    report: tuple[str, str],
    default_target: bool,
    stale: Sequence[Path] = (),
) -> None:
    """Publish a build that passed every gate: its zips, their manifests and its report (JSON,
    Markdown), all or nothing, and remove the `stale` outputs of layers that no longer exist.
    The report it replaces becomes previous-report.json, in the same publication, so the pair
    always describes two consecutive good builds; an identical report replaces nothing, so a
    rebuild that changed nothing writes nothing (and works on a read-only build folder).
    The default target's report is also build/report.json."""
    output_dir = paths.output_dir(runtime, arch)
    report_json, report_md = report
    try:
        previous: str | None = paths.report(runtime, arch).read_text()
    except (OSError, UnicodeDecodeError):
        previous = None  # the first good build, or an unreadable report: nothing worth keeping
    with publishing() as publication:
        if previous is not None and previous != report_json:
            publication.text(previous, paths.previous_report(runtime, arch))
        for path in stale:
            publication.remove(path)
        for build in builds:
            stage_layer(publication, build, output_dir)
        publication.text(report_json, paths.report(runtime, arch))
        publication.text(report_md, paths.report_md(runtime, arch))
        if default_target:
            publication.text(report_json, paths.default_report)
            publication.text(report_md, paths.default_report_md)
    failed = paths.failed_report(runtime, arch)
    if failed.exists():  # checked first: on a read-only tree even unlinking a missing file fails
        failed.unlink()


def keep_failed_report(paths: BuildPaths, runtime: str, arch: str, report_json: str) -> Path:
    """A build that failed a gate publishes nothing; its report is kept apart, for tools to read."""
    with publishing() as publication:
        publication.text(report_json, paths.failed_report(runtime, arch))
    return paths.failed_report(runtime, arch)
