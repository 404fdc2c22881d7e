"""The build cache is checked before it is trusted: a damaged entry is rebuilt, never published."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from lambda_ml_layers.build.build_layers import BuildRequest, build_layers
from tests.project_factory import TinyProject, tiny_project


def build(project: TinyProject, **options: object) -> dict:
    return build_layers(BuildRequest(root=project.root, find_links=project.wheels_dir, **options))  # type: ignore[arg-type]


def cache_entry(project: TinyProject, layer: str = "tinylayer") -> Path:
    [entry] = [p for p in (project.paths.cache / layer).iterdir() if p.is_dir() and not p.name.startswith(".")]
    return entry


def flip_bytes(path: Path, count: int = 64) -> None:
    """Damage the middle of a file in place, as a bad disk or an interrupted copy would."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(middle, min(middle + count, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def assert_published_zip_is_sound(project: TinyProject) -> None:
    published = project.output_zip("tinylayer")
    with zipfile.ZipFile(published) as archive:
        assert archive.testzip() is None
    digest = hashlib.sha256(published.read_bytes()).hexdigest()
    manifest = json.loads(published.with_suffix(".json").read_text())
    report = json.loads(project.paths.default_report.read_text())
    assert manifest["sha256"] == digest
    assert report["layers"][0]["sha256"] == digest
    assert report["layers"][0]["verified"] is True


def test_a_corrupt_cached_zip_is_rebuilt_not_published(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tiny_project(tmp_path)
    first = build(project)["layers"][0]
    flip_bytes(cache_entry(project) / "layer.zip")
    shutil.rmtree(project.paths.published)
    capsys.readouterr()
    again = build(project)["layers"][0]
    assert again["cache_hit"] is False
    assert again["sha256"] == first["sha256"]
    assert_published_zip_is_sound(project)
    progress = " ".join(capsys.readouterr().err.split())
    assert "is damaged: its layer.zip has sha256" in progress
    assert "rebuilding it" in progress
    # the rebuild replaced the entry: the next build is a sound cache hit
    assert build(project)["layers"][0]["cache_hit"] is True


@pytest.mark.parametrize("damage", ["truncated", "empty", "not-a-build"])
def test_a_damaged_cache_manifest_is_rebuilt(tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str) -> None:
    project = tiny_project(tmp_path)
    first = build(project)["layers"][0]
    manifest = cache_entry(project) / "manifest.json"
    text = manifest.read_text()
    manifest.write_text(
        {"truncated": text[: len(text) // 2], "empty": "", "not-a-build": json.dumps({"sha256": first["sha256"]})}[
            damage
        ]
    )
    capsys.readouterr()
    again = build(project)["layers"][0]
    assert again["cache_hit"] is False
    assert "rebuilding it" in " ".join(capsys.readouterr().err.split())
    assert_published_zip_is_sound(project)
    assert json.loads(manifest.read_text())["sha256"] == first["sha256"]  # the entry was rewritten whole
