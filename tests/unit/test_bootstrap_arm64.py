"""scripts/bootstrap.py's arm64 part: it never touches the host's apt, and says why it skips."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bootstrap() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bootstrap_under_test", ROOT / "scripts" / "bootstrap.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_private_apt_keeps_every_state_file_under_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bootstrap = _bootstrap()
    monkeypatch.setattr(bootstrap, "ARM64_DIR", tmp_path)
    options = bootstrap.private_apt("trixie")
    settings = dict(o.split("=", 1) for o in options if "=" in o)
    assert settings["APT::Architecture"] == "arm64"
    for key in ("Dir::Etc::SourceList", "Dir::State::Lists", "Dir::State::status", "Dir::Cache::Archives"):
        assert settings[key].startswith(str(tmp_path)), key
    sources = (tmp_path / "apt-trixie" / "etc" / "sources.list").read_text()
    assert "[arch=arm64 " in sources and " trixie main" in sources


def test_without_root_it_skips_and_names_the_packages(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bootstrap = _bootstrap()
    monkeypatch.setattr(bootstrap.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(bootstrap.shutil, "which", lambda name: None if "aarch64" in name else shutil.which(name))
    bootstrap.setup_arm64()
    out = capsys.readouterr().out
    assert "arm64: not set up here (not root)" in out
    assert "sudo apt-get install binutils-aarch64-linux-gnu qemu-user-static" in out
