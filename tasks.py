"""Invoke tasks: parse arguments, call the engine, turn its errors into a clean exit.

inv build-layers                     build, verify, size-gate and report every layer
inv build-layers --layer aws-utilities --runtime python3.13 --arch arm64
"""

from __future__ import annotations

from pathlib import Path

from invoke import Collection, Context, Exit, task

from lambda_ml_layers.errors import LayerToolError

ROOT = Path(__file__).parent


@task(
    auto_shortflags=False,
    iterable=["layer"],
    help={
        "runtime": "python3.11, python3.12 or python3.13 (default from layers/defaults.toml)",
        "arch": "x86_64 or arm64 (default from layers/defaults.toml)",
        "layer": "build only this layer (and its base layers); repeat for more",
        "jobs": "layers built at once (default 2)",
        "force": "ignore the build cache and build again",
        "headroom-mb": "room to keep free under Lambda's 262,144,000-byte limit per function (default 5)",
        "find-links": "install only from this folder of wheels, with no index (offline builds)",
        "root": "the project folder (default: this repository)",
    },
)
def build_layers(
    c: Context,
    runtime: str | None = None,
    arch: str | None = None,
    layer: list[str] | None = None,
    jobs: int = 2,
    force: bool = False,
    headroom_mb: float = 5.0,
    find_links: str | None = None,
    root: str | None = None,
) -> None:
    """Build every layer from its lock: install for Lambda, strip, verify, zip, size-gate, report."""
    from lambda_ml_layers.build import BuildRequest
    from lambda_ml_layers.build import build_layers as run_build

    request = BuildRequest(
        root=Path(root).resolve() if root else ROOT,
        runtime=runtime,
        arch=arch,
        layers=list(layer or []),
        jobs=jobs,
        force=force,
        headroom_bytes=int(headroom_mb * 1_000_000),
        find_links=Path(find_links).resolve() if find_links else None,
    )
    try:
        run_build(request)
    except LayerToolError as exc:
        raise Exit(f"\n{exc}", code=exc.exit_code) from None
    except KeyboardInterrupt:
        raise Exit("\nInterrupted: nothing half-written was kept; the next build starts clean.", code=130) from None


namespace = Collection(build_layers)


# --- Pipeline (issue 3): train the model ----------------------------------------------


@task(
    help={
        "stage": "upload the artifact to this stage's model bucket (local, dev, staging, prod; "
        "'local' needs AWS_ENDPOINT_URL pointing at a moto server)",
        "bucket": "upload to this bucket instead of the stage's lambda-ml-layers-<stage>-models-<account>",
        "out": "where to write model.joblib, model.json and model.joblib.sha256 (default build/model)",
    },
)
def train_model(c: Context, stage: str | None = None, bucket: str | None = None, out: str | None = None) -> None:
    """Train the model on data/sample in python3.12 with the layers' packages; print metrics vs a baseline."""
    from lambda_ml_layers.training import TrainRequest
    from lambda_ml_layers.training import train_model as run_training

    request = TrainRequest(root=ROOT, stage=stage, bucket=bucket, out_dir=Path(out).resolve() if out else None)
    try:
        run_training(request)
    except LayerToolError as exc:
        raise Exit(f"\n{exc}", code=exc.exit_code) from None


namespace.add_task(train_model)
