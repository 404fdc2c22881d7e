"""Invoke tasks: parse arguments, call the engine, turn its errors into a clean exit.

inv build-layers                     build, verify, size-gate and report every layer
inv build-layers --layer aws-utilities --runtime python3.13 --arch arm64
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from invoke import Collection, Context, Exit, task

from lambda_ml_layers.core.errors import LayerToolError

ROOT = Path(__file__).parent


def _run(action: Callable[[], Any], interrupted: str = "Interrupted. What was left where is printed above.") -> Any:
    """Call the engine; its errors become a clean exit with their own code, never a traceback."""
    try:
        return action()
    except LayerToolError as exc:
        raise Exit(f"\n{exc}", code=exc.exit_code) from None
    except KeyboardInterrupt:
        raise Exit(f"\n{interrupted}", code=130) from None


@task(
    auto_shortflags=False,
    iterable=["layer"],
    help={
        "runtime": "python3.11, python3.12 or python3.13 (without --runtime and --arch: each runtime/arch a stage "
        "deploys on, its PythonRuntime/Architecture in infra/samconfig.toml; the other from layers/defaults.toml)",
        "arch": "x86_64 or arm64 (see --runtime for the default)",
        "layer": "build only this layer (and its base layers); repeat for more",
        "jobs": "layers built at once, 1 to 32 (default 2)",
        "force": "ignore the build cache and build again",
        "headroom-mb": "MB to keep free under Lambda's 262,144,000-byte limit per function, 0 to 262.144 (default 5)",
        "find-links": "install only from this folder of wheels, with no index (offline builds)",
        "root": "the project folder (default: this repository)",
        "accept-unverified": "publish layers whose imports could not be checked here (e.g. arm64 python3.12: "
        "no arm64 interpreter of that version); without it such a build exits 31 and publishes nothing",
    },
)
def build_layers(
    c: Context,
    runtime: str | None = None,
    arch: str | None = None,
    layer: list[str] | None = None,
    jobs: str | None = None,  # text (a None default makes Invoke pass text): the engine checks it
    force: bool = False,
    headroom_mb: str | None = None,
    find_links: str | None = None,
    root: str | None = None,
    accept_unverified: bool = False,
) -> None:
    """Build every layer from its lock: install for Lambda, strip, verify, zip, size-gate, report."""
    from lambda_ml_layers.build.build_layers import BuildRequest, build_stage_targets
    from lambda_ml_layers.core.options import parse_build_options

    jobs_count, headroom_bytes = _run(lambda: parse_build_options(jobs, headroom_mb))
    request = BuildRequest(
        root=Path(root).resolve() if root else ROOT,
        runtime=runtime,
        arch=arch,
        layers=list(layer or []),
        jobs=jobs_count,
        force=force,
        headroom_bytes=headroom_bytes,
        find_links=Path(find_links).resolve() if find_links else None,
        accept_unverified=accept_unverified,
    )
    from lambda_ml_layers.build.scheduler import INTERRUPTED

    _run(lambda: build_stage_targets(request), interrupted=INTERRUPTED)


namespace = Collection(build_layers)


@task(help={"check": "only check that the committed file matches the built layers"})
def layer_modules(c: Context, check: bool = False) -> None:
    """Write services/shared/layer_modules.json (which layer provides each module) from the built zips."""
    from lambda_ml_layers.checks.module_map import MODULE_MAP, check_layer_modules, write_layer_modules
    from lambda_ml_layers.config.project import load_project

    project = _run(lambda: load_project(ROOT))
    if check:
        _run(lambda: check_layer_modules(project))
        print(f"{MODULE_MAP} matches the built layers.")
    else:
        print(f"Wrote {_run(lambda: write_layer_modules(project)).relative_to(ROOT)}")


namespace.add_task(layer_modules)


@task(help={"check": "fail if a committed layers/<layer>/trace.txt differs from a fresh trace; write nothing"})
def trace_layers(c: Context, check: bool = False) -> None:
    """Trace what the functions, smoke tests and training load from each built layer; write layers/<layer>/trace.txt."""
    from lambda_ml_layers.layer_trace.command import trace_layers as run_trace

    outcome = _run(lambda: run_trace(ROOT, check=check))
    if check:
        print("The trace manifests match what the layers' users load.")
    for path in outcome.changed:
        print(f"Wrote {path.relative_to(ROOT)}")


namespace.add_task(trace_layers)


# --- Scaffold (issue 23): a new layer or function --------------------------------------


@task(
    iterable=["package", "base"],
    help={
        "package": "a package the layer provides, as pip names it (repeat for more): --package lightgbm",
        "base": "a layer this one is built on (its packages are not installed again); repeat for more",
    },
)
def new_layer(c: Context, name: str, package: list[str] | None = None, base: list[str] | None = None) -> None:
    """Scaffold layers/NAME (layer.toml, requirements.in, hashed lock, smoke test) and its template resource."""
    from lambda_ml_layers.build.scaffold import NewLayer
    from lambda_ml_layers.build.scaffold import new_layer as scaffold

    request = NewLayer(root=ROOT, name=name, packages=tuple(package or ()), base=tuple(base or ()))
    _run(lambda: scaffold(request), interrupted="Interrupted: nothing was scaffolded.")


@task(help={"layers": "the layers the function uses, by folder name, comma-separated: core-data-science,aws-utilities"})
def new_function(c: Context, name: str, layers: str = "") -> None:
    """Scaffold services/NAME (handler, shared links, lock) and its function, log group and alarms in the template."""
    from lambda_ml_layers.build.scaffold import NewFunction
    from lambda_ml_layers.build.scaffold import new_function as scaffold

    request = NewFunction(root=ROOT, name=name, layers=tuple(x.strip() for x in layers.split(",") if x.strip()))
    _run(lambda: scaffold(request), interrupted="Interrupted: nothing was scaffolded.")


namespace.add_task(new_layer)
namespace.add_task(new_function)


# --- Pipeline (issue 3): train the model ----------------------------------------------


@task(
    help={
        "stage": "upload the artifact to this stage's model bucket (local, dev, staging, prod; "
        "'local' needs AWS_ENDPOINT_URL pointing at a moto server)",
        "bucket": "upload to this bucket instead of the stage's lambda-ml-layers-<stage>-models-<account>",
        "out": "where to write model.joblib, model.json and model.joblib.sha256 (default build/model)",
        "data": "the training CSV (default: about 270,000 generated rows, written once to build/data/)",
    },
)
def train_model(
    c: Context, stage: str | None = None, bucket: str | None = None, out: str | None = None, data: str | None = None
) -> None:
    """Train the model on ~270k generated rows in python3.12 with the layers' packages; print metrics vs a baseline."""
    from lambda_ml_layers.local.training import TrainRequest
    from lambda_ml_layers.local.training import train_model as run_training

    request = TrainRequest(
        root=ROOT,
        stage=stage,
        bucket=bucket,
        out_dir=Path(out).resolve() if out else None,
        data=Path(data).resolve() if data else None,
    )
    _run(lambda: run_training(request))


namespace.add_task(train_model)


# --- Deploy (issue 8): deploy, rollback, release history, the local stage -------------------


def _interactive() -> bool:
    import sys

    return sys.stdin.isatty() and sys.stdout.isatty()


@task(
    help={
        "stage": "local, dev, staging or prod (infra/samconfig.toml); local rehearses on an emulator",
        "yes": "deploy without asking, also where the stage confirms change sets (staging, prod)",
        "dry-run": "build, check and show the change set; execute nothing",
    },
)
def deploy(c: Context, stage: str, yes: bool = False, dry_run: bool = False) -> None:
    """Build, gate, `sam deploy`, verify and record a release; on failure the stage ends on its last release."""
    from lambda_ml_layers.deploy.deploy import DeployRequest
    from lambda_ml_layers.deploy.deploy import deploy as run_deploy

    request = DeployRequest(root=ROOT, stage=stage, yes=yes, dry_run=dry_run, interactive=_interactive())
    _run(lambda: run_deploy(request))


@task(
    help={
        "stage": "the stage to roll back",
        "to": "the release number to return to (default: the one before the current)",
        "yes": "do not ask, also where the stage confirms change sets",
    },
)
def rollback(c: Context, stage: str, to: str | None = None, yes: bool = False) -> None:
    """Return a stage to an earlier release (its exact layer versions; no layer is published), verified."""
    from lambda_ml_layers.core.options import parse_release_number
    from lambda_ml_layers.deploy.rollback import RollbackRequest
    from lambda_ml_layers.deploy.rollback import rollback as run_rollback

    # Invoke passes an option whose default is None as text.
    number = _run(lambda: parse_release_number(to, stage))
    request = RollbackRequest(root=ROOT, stage=stage, to=number, yes=yes, interactive=_interactive())
    _run(lambda: run_rollback(request))


@task(help={"stage": "the stage whose history to show", "json": "print the records as JSON"})
def releases(c: Context, stage: str, json: bool = False) -> None:
    """List a stage's releases, oldest first: number, kind, time, commit, layer versions."""
    import json as json_module
    import sys
    from dataclasses import asdict

    from lambda_ml_layers.deploy.release_history import release_table
    from lambda_ml_layers.deploy.releases import read_releases

    history, drift = _run(lambda: read_releases(ROOT, stage))
    if json:
        print(json_module.dumps([asdict(r) for r in history.releases], indent=2))
        for problem in history.problems():
            print(problem, file=sys.stderr)
    elif not history.releases and not history.bad:
        print(f"Stage {stage!r} has no releases yet. Deploy with `inv deploy --stage {stage}`.")
    else:
        print(release_table(history))
    if drift:
        print(drift, file=sys.stderr if json else sys.stdout)


@task(help={"stop": "stop the running emulator (the local stage's state goes with it)"})
def local_aws(c: Context, stop: bool = False) -> None:
    """Start (or show) the local AWS emulator the local stage deploys to; its endpoint goes to build/local-aws.json."""
    from lambda_ml_layers.core.paths import BuildPaths
    from lambda_ml_layers.deploy.local_emulator import emulator_endpoint, stop_emulator

    paths = BuildPaths.of(ROOT)
    if stop:
        print(_run(lambda: stop_emulator(paths)))
        return
    endpoint = _run(lambda: emulator_endpoint(paths, start=True, say=print))
    print(f"Local AWS emulator: {endpoint}  (written to {paths.local_aws_state})")


for _task in (deploy, rollback, releases, local_aws):
    namespace.add_task(_task)


# --- Operate (issue 11): size report ---------------------------------------------------------


@task(
    help={
        "stage": "compare with the build report stored with this stage's current release",
        "base": "compare with this saved report.json instead",
        "format": "table (default), json or markdown (for a pull-request comment)",
    },
)
def size_report(c: Context, stage: str | None = None, base: str | None = None, format: str = "table") -> None:
    """Today's build (build/report.json) against the previous good build (no option), a stage's release or a
    saved report: bytes per layer and package and why, room left per function, a verdict; writes the picture
    build/size-report.html."""
    import sys

    from lambda_ml_layers.size_report.command import SizeReportRequest
    from lambda_ml_layers.size_report.command import size_report as run_size_report

    request = SizeReportRequest(root=ROOT, stage=stage, base=Path(base).resolve() if base else None, fmt=format)
    report = _run(lambda: run_size_report(request))
    print(report.text)
    print(f"Picture: {report.picture}", file=sys.stderr)


namespace.add_task(size_report)


# --- Operate it (issue 11): layer usage and pruning, cold starts -----------------------------


@task(help={"stage": "the stage whose layer versions to list"})
def layer_usage(c: Context, stage: str) -> None:
    """Every version of the project's layers in the stage: who uses it, which release recorded it, unused or behind."""
    from lambda_ml_layers.ops.layer_commands import layer_usage as read_usage
    from lambda_ml_layers.ops.layer_commands import usage_lines

    print("\n".join(usage_lines(_run(lambda: read_usage(ROOT, stage)))))


@task(
    help={
        "stage": "the stage to prune",
        "keep": "the newest N versions of each layer stay, used or not",
        "dry-run": "say what would be deleted; delete nothing",
    },
)
def prune_layers(c: Context, stage: str, keep: str, dry_run: bool = False) -> None:
    """Delete unused old layer versions; never one a function version, alias or recorded release references."""
    from lambda_ml_layers.core.options import parse_keep
    from lambda_ml_layers.ops.layer_commands import prune_layers as run_prune

    _run(lambda: run_prune(ROOT, stage, parse_keep(keep), dry_run))


@task(help={"stage": "the stage to read", "since": "how far back: 90m, 24h (default), 7d"})
def cold_starts(c: Context, stage: str, since: str = "24h") -> None:
    """Init duration per function version (count, p50, p95, max) from REPORT lines, with its release and benchmark."""
    from lambda_ml_layers.ops.cold_start_rules import parse_since
    from lambda_ml_layers.ops.cold_starts import cold_start_lines
    from lambda_ml_layers.ops.cold_starts import cold_starts as read_cold_starts

    seconds = _run(lambda: parse_since(since))
    print("\n".join(cold_start_lines(_run(lambda: read_cold_starts(ROOT, stage, seconds)), since)))


@task(
    name="invoke",
    help={
        "function": "the template's logical id, e.g. DataValidationFunction",
        "event": "a JSON file with the event (default: the smoke event every function answers)",
        "stage": "run what the stage's live alias runs (default: today's build)",
    },
)
def invoke_function(c: Context, function: str, event: str | None = None, stage: str | None = None) -> None:
    """Run one function once in the sandbox (today's build, or a stage's live code and layers); print its logs."""
    from lambda_ml_layers.ops.invoke import invoke_built, invoke_deployed, invoke_lines, raise_if_failed, read_event

    payload = _run(lambda: read_event(event))
    if stage is None:
        result = _run(lambda: invoke_built(ROOT, function, payload))
    else:
        result = _run(lambda: invoke_deployed(ROOT, stage, function, payload))
    print("\n".join(invoke_lines(result)))
    _run(lambda: raise_if_failed(result))


for _task in (layer_usage, prune_layers, cold_starts, invoke_function):
    namespace.add_task(_task)


# --- Pipeline (issue 10): the state machine run locally ---------------------------------------


@task(
    help={
        "batch": "the CSV file to upload and run (default data/sample/transactions.csv)",
        "sandboxes": "sandboxes (processes) per function at once, 1 to 8 (default 1); a Map asks for up to "
        "its MaxConcurrency",
        "stage": "run the deployed pipeline of this stage: upload to its data bucket, follow the execution it starts",
    }
)
def run_pipeline(c: Context, batch: str | None = None, sandboxes: str | None = None, stage: str | None = None) -> None:
    """Run the template's state machine on one CSV: the deployed stage's (--stage), else through the
    sandboxes against a fresh moto server (no deploy)."""
    if stage is not None:
        from lambda_ml_layers.deploy.pipeline_run import run_on_stage
        from lambda_ml_layers.deploy.releases import release_store
        from lambda_ml_layers.local.pipeline_stage import SAMPLE

        path = Path(batch) if batch else ROOT / SAMPLE
        session = _run(lambda: release_store(ROOT, stage).session)
        outcome = _run(lambda: run_on_stage(ROOT, session, path))
        print("\n".join(outcome.lines))
        if outcome.status != "SUCCEEDED":
            raise Exit(f"The execution ended {outcome.status} ({outcome.error}); see above.", code=1)
        return
    from lambda_ml_layers.local.pipeline_progress import outcome_line
    from lambda_ml_layers.local.quick_pipeline import pipeline_request, run_batch

    request = _run(lambda: pipeline_request(ROOT, batch, sandboxes))
    execution, lines = _run(lambda: run_batch(request))
    print("\n".join([*lines, outcome_line(execution)]))
    if execution.status != "SUCCEEDED":
        raise Exit(f"The execution ended {execution.status} ({execution.error}); see above.", code=1)


namespace.add_task(run_pipeline)
