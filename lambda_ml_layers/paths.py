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
    def tmp(self) -> Path:
        return self.build / "tmp"

    def output_dir(self, runtime: str, arch: str) -> Path:
        """build/layers/<runtime>-<arch>/: the published zips the template points at."""
        return self.build / "layers" / f"{runtime}-{arch}"

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
