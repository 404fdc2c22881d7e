"""Every path under build/: the one module that spells them out (engine, tests, benchmarks ask it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BuildPaths:
    """build/ of one project checkout."""

    build: Path

    @classmethod
    def of(cls, root: Path) -> BuildPaths:
        return cls(root / "build")

    @property
    def cache(self) -> Path:
        return self.build / "cache" / "layers"

    @property
    def pip_cache(self) -> Path:
        return self.build / "cache" / "pip"

    @property
    def lock_file(self) -> Path:
        """build/.build.lock: held by the one build running in this folder, holding its pid."""
        return self.build / ".build.lock"

    def runtime_client(self, runtime: str, arch: str, lock_digest: str) -> Path:
        """build/runtime-client/<runtime>-<arch>/<lock digest>/: awslambdaric and its dependencies,
        installed for the sandbox's runtime (a changed lock installs beside the old one)."""
        return self.build / "runtime-client" / f"{runtime}-{arch}" / lock_digest

    @property
    def tmp(self) -> Path:
        return self.build / "tmp"

    def pipeline_run(self, batch_id: str) -> Path:
        """build/pipeline-runs/<batch>/: what `inv run-pipeline --stage` downloaded of a batch's outputs."""
        return self.build / "pipeline-runs" / batch_id

    @property
    def published(self) -> Path:
        """build/layers/: every target's published zips (see output_dir)."""
        return self.build / "layers"

    def output_dir(self, runtime: str, arch: str) -> Path:
        """build/layers/<runtime>-<arch>/: the published zips the template points at."""
        return self.published / f"{runtime}-{arch}"

    @property
    def reports(self) -> Path:
        """build/reports/: every target's reports (see report_dir)."""
        return self.build / "reports"

    def report_dir(self, runtime: str, arch: str) -> Path:
        """build/reports/<runtime>-<arch>/: one target's reports, so builds for other targets keep theirs."""
        return self.reports / f"{runtime}-{arch}"

    def report(self, runtime: str, arch: str) -> Path:
        """The report (JSON) of the last good build for this target: it describes the published zips."""
        return self.report_dir(runtime, arch) / "report.json"

    def previous_report(self, runtime: str, arch: str) -> Path:
        """The report the last good build for this target replaced: `inv size-report`'s base when
        no stage or saved report is given."""
        return self.report_dir(runtime, arch) / "previous-report.json"

    def report_md(self, runtime: str, arch: str) -> Path:
        return self.report_dir(runtime, arch) / "report.md"

    def upstream_tests_report(self, runtime: str, arch: str, fast: bool = False) -> Path:
        """`nox -s upstream_tests`' report (JSON; .md beside it): counts per suite, stripped-only failures.
        The CI subset (upstream_tests_fast) writes its own, so it never hides the whole selection's."""
        return self.report_dir(runtime, arch) / ("upstream-tests-fast.json" if fast else "upstream-tests.json")

    def failed_report(self, runtime: str, arch: str) -> Path:
        """The report of the last build for this target that failed a gate (its zips were not published)."""
        return self.report_dir(runtime, arch) / "failed-report.json"

    @property
    def default_report(self) -> Path:
        """build/report.json: a copy of the project's default target's report (runtime and arch of
        layers/defaults.toml), for people and tools that want "the" report."""
        return self.build / "report.json"

    @property
    def default_report_md(self) -> Path:
        return self.build / "report.md"

    @property
    def size_report_html(self) -> Path:
        """build/size-report.html: `inv size-report`'s picture (treemap per layer, function bars)."""
        return self.build / "size-report.html"

    @property
    def benchmarks(self) -> Path:
        """build/benchmarks/: the benchmarks' results and scratch space."""
        return self.build / "benchmarks"

    @property
    def cold_start_figures(self) -> Path:
        """What benchmarks/cold_start.py measured last (read by `inv cold-starts`)."""
        return self.benchmarks / "cold_start.json"

    @property
    def logs(self) -> Path:
        """JSON-lines logs of deploys and rollbacks."""
        return self.build / "logs"

    def releases(self, stage: str) -> Path:
        """The local copy of a stage's release history (the stage's own bucket is the original)."""
        return self.build / "releases" / stage

    def deploy_dir(self, stage: str) -> Path:
        """Working files of one stage's deploy: the derived template, function packages."""
        return self.build / "deploy" / stage

    @property
    def local_aws_state(self) -> Path:
        """build/local-aws.json: the running local AWS emulator's endpoint and pid."""
        return self.build / "local-aws.json"
