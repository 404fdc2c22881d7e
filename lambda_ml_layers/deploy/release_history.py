"""`inv releases`: a stage's release history, read-only (no lock, no gates)."""

from __future__ import annotations

from pathlib import Path

from ..paths import BuildPaths
from .local_emulator import emulator_endpoint
from .releases import Release, ReleaseStore
from .stage_session import StageSession
from .stages import load_stage


def release_store(root: Path, stage_name: str) -> ReleaseStore:
    """The stage's release history, to read (no lock, no gates; the local stage's emulator must run)."""
    stage = load_stage(root, stage_name)
    paths = BuildPaths.of(root)
    endpoint = emulator_endpoint(paths, start=False, say=print) if stage.emulated else None
    session = StageSession(stage, endpoint)
    session.caller()
    return ReleaseStore(session, paths.releases(stage.name))


def releases(root: Path, stage_name: str) -> list[Release]:
    """The stage's release history (read-only: no lock, no gates)."""
    return release_store(root, stage_name).releases()
