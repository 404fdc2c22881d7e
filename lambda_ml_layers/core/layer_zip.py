"""Deterministic layer zips: same files in, same bytes out; written atomically."""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from pathlib import Path

from .layer_tree import walk_files
from .write_errors import naming

FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def write_zip(source: Path, destination: Path, prefix: str = "python", files: list[str] | None = None) -> None:
    """Zip `source` (or only `files`, relative to it) as `prefix/...` into `destination`, replacing
    it only once complete. An empty prefix zips at the root, as a function package is.

    Entries are sorted and get fixed timestamps and modes, so an unchanged layer gives a
    byte-identical zip and deploys publish no new layer version.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".part")
    os.close(fd)
    temp = Path(temp_name)
    try:
        with naming(temp), zipfile.ZipFile(temp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
            for rel in sorted(files if files is not None else (rel for rel, _ in walk_files(source))):
                path = source / rel
                info = zipfile.ZipInfo(f"{prefix}/{rel}" if prefix else rel, date_time=FIXED_TIME)
                info.create_system = 3  # unix, so the mode below is honoured
                executable = os.access(path, os.X_OK)
                info.external_attr = (0o100755 if executable else 0o100644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                with path.open("rb") as src, archive.open(info, "w") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
        with naming(temp), temp.open("rb") as f:
            os.fsync(f.fileno())
        temp.chmod(0o644)  # mkstemp's 0600 would follow the zip into the cache and the published zips
        os.replace(temp, destination)
    finally:
        temp.unlink(missing_ok=True)


def unzipped_size(path: Path) -> tuple[int, int]:
    """(files, bytes) once extracted: what Lambda counts against its limit."""
    with zipfile.ZipFile(path) as archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        return len(infos), sum(i.file_size for i in infos)


def extract(path: Path, destination: Path) -> None:
    """Extract as Lambda does into /opt: a later layer's file replaces an earlier one's."""
    with naming(destination), zipfile.ZipFile(path) as archive:
        archive.extractall(destination)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
