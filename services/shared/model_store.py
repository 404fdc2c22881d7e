"""Load the trained model bundle from S3: verified by sha256, cached in /tmp, version-checked.

Linked into the packages that load the model (feature_engineering, predictions) as
`<package>/model_store.py`; tests/services/test_shared_copies.py checks the links.

The model bucket holds, per `inv train-model --stage X`:
    models/<version>/model.joblib   the bundle: {"preprocessor", "model", "feature_names", ...}
    models/current/model.json       the manifest: artifact key, sha256, library versions
The manifest is written last, so it never points at an artifact that is not there yet.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Imported at module load, inside the handler's layer_imports block: a missing
# MLLibrariesLayer then fails the init, not the first invocation.
import joblib
import sklearn

from .runtime import ArtifactError, BadInput, Logger, read_object, s3_client

DEFAULT_MANIFEST_KEY = "models/current/model.json"
_REQUIRED = ("artifact_key", "sha256", "versions", "feature_names", "model_version")


@dataclass(frozen=True)
class ModelBundle:
    version: str
    sha256: str
    manifest: dict[str, Any]
    preprocessor: Any
    model: Any
    feature_names: list[str]


# One bundle per container: warm invocations reuse it while the manifest names the same sha.
_loaded: dict[str, ModelBundle] = {}


def cache_dir() -> Path:
    return Path(os.environ.get("MODEL_CACHE_DIR", "/tmp/models"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(bucket: str, key: str) -> dict[str, Any]:
    try:
        raw = read_object(bucket, key, "model manifest")
    except BadInput as exc:
        raise ArtifactError(f"{exc}. Train and upload one with `inv train-model --stage <stage>`.") from None
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise ArtifactError(f"model manifest s3://{bucket}/{key} is not JSON") from None
    missing = [f for f in _REQUIRED if not isinstance(manifest, dict) or f not in manifest]
    if missing:
        raise ArtifactError(f"model manifest s3://{bucket}/{key} lacks {', '.join(missing)}")
    return manifest


def check_versions(manifest: dict[str, Any]) -> None:
    """Refuse a model pickled by another scikit-learn: unpickling across versions is unsafe."""
    trained = manifest["versions"].get("scikit-learn")
    if trained != sklearn.__version__:
        raise ArtifactError(
            f"model {manifest['model_version']} was trained with scikit-learn {trained}, but "
            f"layer MLLibrariesLayer provides scikit-learn {sklearn.__version__}; retrain it "
            f"with `inv train-model --stage <stage>` against the current layer locks."
        )


def load_model(bucket: str, manifest_key: str, logger: Logger) -> ModelBundle:
    manifest = read_manifest(bucket, manifest_key)
    sha = str(manifest["sha256"])
    cached = _loaded.get(sha)
    if cached is not None:
        return cached
    check_versions(manifest)
    path = cache_dir() / f"{sha}.joblib"
    # Re-hash a file left by an earlier invocation too: /tmp outlives us and can be damaged.
    if not path.exists() or _sha256(path) != sha:
        _download(bucket, str(manifest["artifact_key"]), path, sha)
        logger.info("model downloaded", model_version=manifest["model_version"], sha256=sha)
    bundle = joblib.load(path)
    model = ModelBundle(
        version=str(manifest["model_version"]),
        sha256=sha,
        manifest=manifest,
        preprocessor=bundle["preprocessor"],
        model=bundle["model"],
        feature_names=list(manifest["feature_names"]),
    )
    _loaded.clear()  # keep only the current model in memory
    _loaded[sha] = model
    return model


def _download(bucket: str, key: str, path: Path, sha: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
    os.close(handle)
    part = Path(temporary)
    try:
        try:
            s3_client().download_file(bucket, key, str(part))
        except Exception as exc:
            raise ArtifactError(f"model artifact s3://{bucket}/{key} could not be read: {exc}") from None
        actual = _sha256(part)
        if actual != sha:
            raise ArtifactError(
                f"model artifact s3://{bucket}/{key} has sha256 {actual[:12]}..., but its manifest "
                f"says {sha[:12]}...: it was modified or replaced; refusing to load it. Re-upload "
                f"with `inv train-model --stage <stage>`."
            )
        part.replace(path)  # atomic: a reader sees the whole verified file or none
    finally:
        part.unlink(missing_ok=True)
