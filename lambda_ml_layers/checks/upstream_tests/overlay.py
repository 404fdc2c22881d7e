"""Lay the wheels' test folders and conftest.py files back over a built layer, hash-checked.

Only these go back: everything else the layer ships is what is under test. The files come
from the unstripped install of the same lock (pip checked each wheel against the lock's
hashes), and each copied file is checked against its wheel's RECORD sha256, so the tests
laid over the layer are byte for byte the ones the locked wheel ships.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
from pathlib import Path

from ...core.errors import InstallError
from ...core.layer_tree import Distribution

TEST_FOLDERS = ("tests", "test")
TEST_FILES = ("conftest.py",)


def is_test_file(rel: str) -> bool:
    """A file inside a tests/ or test/ folder of a package, or a conftest.py (pure)."""
    parts = rel.split("/")
    if parts[0].endswith((".dist-info", ".data")) or parts[0] in ("bin", "..") or "__pycache__" in parts:
        return False
    return parts[-1] in TEST_FILES or any(part in TEST_FOLDERS for part in parts[:-1])


def record_hashes(site: Path, dist: Distribution) -> dict[str, str]:
    """RECORD path -> its 'sha256=...' entry, for the files the wheel installed."""
    record = (site / dist.dist_info / "RECORD").read_text(encoding="utf-8")
    hashes = {}
    for line in record.splitlines():
        path, _, rest = line.partition(",")
        digest = rest.split(",", 1)[0]
        if digest:
            hashes[path] = digest
    return hashes


def record_digest(path: Path) -> str:
    raw = hashlib.sha256(path.read_bytes()).digest()
    return "sha256=" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def overlay_tests(reference_site: Path, layer_site: Path, dists: list[Distribution]) -> int:
    """Copy each distribution's test files from the unstripped install into the layer; files copied."""
    copied = 0
    for dist in dists:
        hashes = record_hashes(reference_site, dist)
        for rel in dist.files:
            if not is_test_file(rel):
                continue
            source = reference_site / rel
            if hashes.get(rel) != record_digest(source):
                raise InstallError(
                    f"{source} does not match the sha256 in {dist.dist_info}/RECORD of the locked wheel, so "
                    f"the tests laid over the layer would not be the wheel's. Fix: delete the scratch folder "
                    f"and the pip cache (build/cache/pip) and run the session again."
                )
            target = layer_site / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            copied += 1
    return copied
