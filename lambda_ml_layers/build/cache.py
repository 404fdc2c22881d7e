"""Content-addressed cache of built layers: a key over everything that shapes the zip."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import shutil
import tempfile
from contextlib import suppress
from functools import cache
from pathlib import Path
from typing import Any

from ..config.locks import LayerLock
from ..config.project import LayerConfig, ProjectConfig, base_layers_of
from ..core.layer_zip import sha256_of
from ..core.runtimes import RUNTIMES
from ..core.toolchains import find_toolchain
from ..core.write_errors import naming

ENGINE_DIR = Path(__file__).resolve().parents[1]
# What decides a zip's bytes: the build's own folder (pruning/ included), what it reads and runs on
# (config/, core/), and target_scripts/, which the target interpreter runs to compile, load and verify.
BUILD_INPUT_FOLDERS = ("build", "config", "core", "target_scripts")


@cache
def engine_version() -> str:
    """A digest of the engine's own source: a changed step invalidates every cached layer."""
    digest = hashlib.sha256()
    sources = [path for folder in BUILD_INPUT_FOLDERS for path in (ENGINE_DIR / folder).rglob("*.py")]
    for path in sorted(sources):
        digest.update(str(path.relative_to(ENGINE_DIR)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


# Settings that never change the zip: editing them must not force a rebuild.
_NOT_IN_ZIP = ("folder", "description", "allowed_import_failures", "upstream_tests", "prune_option")


@cache
def toolchain(runtime: str, arch: str) -> dict[str, str | bool]:
    """What the build machine brings that shapes the zip: the target's strip and interpreter
    (native or under qemu) decide whether shared objects are stripped and verified at all."""
    return {
        "machine": platform.machine(),
        "target": find_toolchain(RUNTIMES[runtime], arch).describe(),
        "readelf": shutil.which("readelf") is not None,
    }


def _manifest_digest(layer: LayerConfig) -> str | None:
    if layer.prune is None:
        return None
    return hashlib.sha256((layer.folder / layer.prune.manifest).read_bytes()).hexdigest()


def layer_key(
    layer: LayerConfig,
    lock_text: str,
    runtime: str,
    arch: str,
    interpreter_version: str,
    base_keys: list[str],
    offline_wheels: bool = False,
) -> str:
    config = dataclasses.asdict(layer)
    for key in _NOT_IN_ZIP:
        config.pop(key)
    material = {
        "engine": engine_version(),
        "toolchain": toolchain(runtime, arch),
        "offline_wheels": offline_wheels,
        "config": config,
        "lock": lock_text,
        "runtime": runtime,
        "arch": arch,
        "interpreter": interpreter_version,
        "bases": base_keys,
        # The trace manifest decides what [prune] removes: a changed manifest rebuilds the layer.
        "prune_manifest": _manifest_digest(layer),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()[:24]


def cache_keys(
    project: ProjectConfig,
    layers: list[LayerConfig],
    locks: dict[str, LayerLock],
    runtime: str,
    arch: str,
    interpreter_version: str,
    offline_wheels: bool,
) -> dict[str, str]:
    """Every layer's cache key from its inputs alone (a base layer's key stands in for its zip),
    so no layer waits for another to know whether it must be built. `layers` lists bases first;
    a layer whose lock (or a base layer's) is not at hand gets no key."""
    keys: dict[str, str] = {}
    for layer in layers:
        base_keys = [keys.get(base.name) for base in base_layers_of(project, layer)]
        lock = locks.get(layer.name)
        if lock is None or None in base_keys:
            continue
        keys[layer.name] = layer_key(
            layer, lock.text, runtime, arch, interpreter_version, [k for k in base_keys if k], offline_wheels
        )
    return keys


@dataclasses.dataclass(frozen=True)
class CacheEntry:
    folder: Path

    @property
    def zip_path(self) -> Path:
        return self.folder / "layer.zip"

    @property
    def manifest_path(self) -> Path:
        return self.folder / "manifest.json"

    def manifest(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.manifest_path.read_text())
        return data


def lookup(cache_dir: Path, layer: str, key: str) -> CacheEntry | None:
    entry = CacheEntry(cache_dir / layer / key)
    if entry.zip_path.is_file() and entry.manifest_path.is_file():
        # Recently used: pruned last. Only a hint, so a read-only cache is still readable.
        with suppress(OSError):
            os.utime(entry.folder)
        return entry
    return None


def entry_problem(entry: CacheEntry) -> str | None:
    """Why a cache entry must not be used (None: it is sound). A disk fault or a killed writer
    elsewhere can leave a truncated manifest or a damaged zip; publishing either would ship
    bytes the manifest and report vouch for but never checked."""
    try:
        manifest = entry.manifest()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"its manifest.json is unreadable ({type(exc).__name__}: {exc})"
    expected = manifest.get("sha256") if isinstance(manifest, dict) else None
    if not isinstance(expected, str):
        return "its manifest.json records no sha256"
    try:
        found = sha256_of(entry.zip_path)
    except OSError as exc:
        return f"its layer.zip is unreadable ({exc})"
    if found != expected:
        return f"its layer.zip has sha256 {found[:16]}…, but its manifest.json records {expected[:16]}…"
    return None


def store(cache_dir: Path, layer: str, key: str, zip_file: Path, manifest: dict[str, Any]) -> CacheEntry:
    """Move the zip and its manifest into the cache in one rename, so a reader never sees half."""
    parent = cache_dir / layer
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{key}."))
    try:
        with naming(staging / "layer.zip"):
            shutil.move(str(zip_file), staging / "layer.zip")
        with naming(staging / "manifest.json"):
            (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        final = parent / key
        if final.exists():
            shutil.rmtree(final)
        os.rename(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return CacheEntry(parent / key)


def prune(cache_dir: Path, layer: str, keep: str, keep_count: int = 6) -> None:
    """Keep the most recently used entries per layer (enough for every runtime and arch) so the
    cache does not grow without bound."""
    parent = cache_dir / layer
    if not parent.is_dir():
        return
    entries = sorted(
        (p for p in parent.iterdir() if p.is_dir() and p.name != keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for stale in entries[keep_count - 1 :]:
        shutil.rmtree(stale, ignore_errors=True)
