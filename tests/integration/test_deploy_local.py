"""`inv deploy`, `inv rollback`, `inv releases` on the local stage, as a user runs them.

A copy of the checkout (so its layers, template and handlers can be changed) deploys to a
patched moto server over HTTP through the real `sam deploy`. The tests run in order on one
stage: release 1, a no-op, a changed layer, a CloudFormation failure, a smoke failure rolled
back, a rollback to release 1; then the refusals, which must upload nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from lambda_ml_layers.core.paths import BuildPaths
from lambda_ml_layers.local.moto_server import MotoServer, moto_server
from lambda_ml_layers.local.pipeline_stage import s3_created_event, upload_trained_model

pytestmark = pytest.mark.emulator

REPO = Path(__file__).resolve().parents[2]
INV = REPO / ".venv" / "bin" / "inv"
STAGE = "local"
PREFIX = "lambda-ml-layers-local"
LAYERS = ("core-data-science", "ml-libraries", "aws-utilities")
FUNCTIONS = ("data-validation", "feature-engineering", "predictions")
PLANTED_SECRET = "planted-secret-value-7f3a9c"
SAMPLE = REPO / "data" / "sample" / "transactions.csv"


def copy_checkout(destination: Path) -> Path:
    """The checkout's files (committed or not, never ignored ones), links kept; the layer cache
    copied and the pip cache shared, so unchanged layers are cache hits."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for raw in filter(None, listed):
        rel = raw.decode()
        source, target = REPO / rel, destination / rel
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the work tree
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    repo_build, build = BuildPaths.of(REPO), BuildPaths.of(destination)
    if repo_build.cache.exists():
        shutil.copytree(repo_build.cache, build.cache)
    repo_build.pip_cache.mkdir(parents=True, exist_ok=True)
    build.pip_cache.parent.mkdir(parents=True, exist_ok=True)
    build.pip_cache.symlink_to(repo_build.pip_cache)
    return destination


@pytest.fixture(scope="module")
def server() -> Iterator[MotoServer]:
    with moto_server() as running:
        yield running


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_checkout(tmp_path_factory.mktemp("checkout"))


def environment(server: MotoServer, unset: tuple[str, ...] = (), **extra_env: str) -> dict[str, str]:
    env = {
        **os.environ,
        "LAMBDA_ML_LAYERS_LOCAL_AWS": server.endpoint_url,
        "SAM_CLI": str(REPO / ".venv-sam" / "bin" / "sam"),
        "CHECKOV": str(REPO / ".venv-checkov" / "bin" / "checkov"),
        # Real-looking credentials in the user's environment: the local stage must never use or show them.
        "AWS_SECRET_ACCESS_KEY": PLANTED_SECRET,
        "AWS_ACCESS_KEY_ID": "AKIAPLANTEDKEY000000",
        **extra_env,
    }
    return {key: value for key, value in env.items() if key not in unset}


def inv(
    root: Path, server: MotoServer, *args: str, unset: tuple[str, ...] = (), **extra_env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(INV), "--search-root", str(root), *args],
        capture_output=True,
        text=True,
        env=environment(server, unset, **extra_env),
        stdin=subprocess.DEVNULL,
        timeout=1500,
    )


@contextmanager
def edited(*changes: tuple[Path, Callable[[str], str]]) -> Iterator[None]:
    """The files changed for the block, then put back exactly, whatever happens."""
    originals = [(path, path.read_text()) for path, _ in changes]
    for (path, change), (_, text) in zip(changes, originals, strict=True):
        path.write_text(change(text))
    try:
        yield
    finally:
        for path, text in originals:
            path.write_text(text)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "Traceback" not in output
    return output


def history(root: Path, server: MotoServer) -> list[dict[str, Any]]:
    """The good records as `inv releases --json` prints them (problems and drift go to stderr)."""
    result = inv(root, server, "releases", "--stage", STAGE, "--json")
    ok(result)
    data: list[dict[str, Any]] = json.loads(result.stdout)
    return data


def assert_says_where_the_stage_is(output: str, before: dict[str, Any], after: list[dict[str, Any]]) -> None:
    """The message after a failed or interrupted deploy says what the release history shows,
    and only that: restored (a new `restore` record) or still on the latest recorded release
    (the one before, or the interrupted deploy's own if it recorded itself before the Ctrl-C)."""
    new = [release for release in after if release["number"] > before["number"]]
    if new and new[-1]["kind"] == "restore":
        target = new[-2]["number"] if len(new) > 1 else before["number"]
        expected = f"was restored to release {target}'s code and layers (recorded as release {new[-1]['number']})"
        assert expected in output, output[-4000:]
        assert "is still on release" not in output
    else:
        assert f"is still on release {new[-1]['number'] if new else before['number']} " in output, output[-4000:]
        assert "was restored to release" not in output


def layer_versions(server: MotoServer) -> dict[str, int]:
    client = server.client("lambda")
    return {
        layer: len(client.list_layer_versions(LayerName=f"{PREFIX}-{layer}").get("LayerVersions", []))
        for layer in LAYERS
    }


def function_versions(server: MotoServer) -> dict[str, int]:
    client = server.client("lambda")
    return {
        name: len(
            [
                v
                for v in client.list_versions_by_function(FunctionName=f"{PREFIX}-{name}")["Versions"]
                if v["Version"] != "$LATEST"
            ]
        )
        for name in FUNCTIONS
    }


def live_layers(server: MotoServer) -> dict[str, list[str]]:
    client = server.client("lambda")
    result = {}
    for name in FUNCTIONS:
        version = client.get_alias(FunctionName=f"{PREFIX}-{name}", Name="live")["FunctionVersion"]
        config = client.get_function_configuration(FunctionName=f"{PREFIX}-{name}", Qualifier=version)
        result[name] = [layer["Arn"] for layer in config.get("Layers", [])]
    return result


def uploads(server: MotoServer) -> int:
    """Objects in every bucket of the emulator: what a refused deploy must not add to."""
    s3 = server.client("s3")
    return sum(s3.list_objects_v2(Bucket=b["Name"]).get("KeyCount", 0) for b in s3.list_buckets()["Buckets"])


def test_first_deploy_is_release_1(root: Path, server: MotoServer) -> None:
    output = ok(inv(root, server, "deploy", "--stage", STAGE))
    assert "Stage 'local' is on release 1 (verified)." in output
    releases = history(root, server)
    assert [r["number"] for r in releases] == [1]
    recorded = releases[0]
    assert set(recorded["layers"]) == set(LAYERS)
    assert layer_versions(server) == dict.fromkeys(LAYERS, 1)
    arns = {layer: info["arn"] for layer, info in recorded["layers"].items()}
    assert live_layers(server) == {
        "data-validation": [arns["core-data-science"], arns["aws-utilities"]],
        "feature-engineering": [arns["core-data-science"], arns["ml-libraries"], arns["aws-utilities"]],
        "predictions": [arns["core-data-science"], arns["ml-libraries"], arns["aws-utilities"]],
    }
    stack = server.client("cloudformation").describe_stacks(StackName=PREFIX)["Stacks"][0]
    machine = next(o["OutputValue"] for o in stack["Outputs"] if o["OutputKey"] == "PipelineStateMachineArn")
    definition = server.client("stepfunctions").describe_state_machine(stateMachineArn=machine)["definition"]
    assert f"{PREFIX}-data-validation:live" in definition
    local_copy = BuildPaths.of(root).releases(STAGE) / "0001.json"
    assert json.loads(local_copy.read_text())["number"] == 1
    # The planted credentials were neither used nor shown nor logged.
    logs = "".join(p.read_text() for p in BuildPaths.of(root).logs.glob("*.jsonl"))
    assert PLANTED_SECRET not in output + logs + local_copy.read_text()


def stack_outputs(server: MotoServer) -> dict[str, str]:
    stack = server.client("cloudformation").describe_stacks(StackName=PREFIX)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def test_run_pipeline_on_the_stage_refuses_an_odd_name_and_explains_a_rejection(
    root: Path, server: MotoServer, tmp_path: Path
) -> None:
    odd = tmp_path / "two words\n.csv"
    odd.write_text("transaction_id\n")
    refused = inv(root, server, "run-pipeline", "--stage", STAGE, "--batch", str(odd))
    said = refused.stdout + refused.stderr
    assert refused.returncode == 29 and "Traceback" not in said, said[-3000:]
    assert "('\\n', ' ')" in said and "e.g. to 'two_words_.csv'" in said
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")  # DataValidation rejects it: no header
    rejected = inv(root, server, "run-pipeline", "--stage", STAGE, "--batch", str(empty))
    said = rejected.stdout + rejected.stderr
    assert rejected.returncode == 1 and "Traceback" not in said, said[-3000:]
    # Started by the upload (the bucket's EventBridge notification and the template's rule).
    assert "TaskStateEntered Validate" in said and "FailStateEntered ValidationFailed" in said
    reason = said.split("REJECTED: ", 1)[1].splitlines()[0]
    assert "the batch is an empty file" in reason and "reports/empty/validation.json" in reason, reason
    assert "DataValidationFunction" in said and " MB" in said  # its REPORT figures
    assert (BuildPaths.of(root).pipeline_run("empty") / "reports" / "empty" / "validation.json").is_file()


def test_an_object_created_event_runs_the_deployed_state_machine_to_succeeded(
    server: MotoServer, tmp_path: Path
) -> None:
    outputs = stack_outputs(server)
    upload_trained_model(server, REPO, outputs["ModelBucketName"], tmp_path)
    events = server.client("events")
    rule = next(r["Name"] for r in events.list_rules()["Rules"] if "BatchUploaded" in r["Name"])
    events.disable_rule(Name=rule)  # only the boto3 execution below runs on this upload
    try:
        s3, bucket, key = server.client("s3"), outputs["DataBucketName"], "incoming/boto3-sample.csv"
        version = s3.put_object(Bucket=bucket, Key=key, Body=SAMPLE.read_bytes())["VersionId"]
        sfn = server.client("stepfunctions")
        started = sfn.start_execution(
            stateMachineArn=outputs["PipelineStateMachineArn"],
            input=json.dumps(s3_created_event(bucket, key, version)),
        )
        deadline = time.monotonic() + 900
        while (described := sfn.describe_execution(executionArn=started["executionArn"]))["status"] == "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(1)
    finally:
        events.enable_rule(Name=rule)
    assert described["status"] == "SUCCEEDED", (described.get("error"), described.get("cause"))
    assert json.loads(described["output"])["scored_rows"] > 0
    assert "predictions/boto3-sample/summary.json" in {
        o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="predictions/")["Contents"]
    }


def test_redeploy_with_nothing_changed_publishes_nothing(root: Path, server: MotoServer) -> None:
    layers, functions = layer_versions(server), function_versions(server)
    for _ in range(2):
        ok(inv(root, server, "deploy", "--stage", STAGE))
    assert layer_versions(server) == layers
    assert function_versions(server) == functions
    second = inv(root, server, "deploy", "--stage", STAGE)
    assert "Nothing changed" in ok(second)


def test_changed_layer_publishes_one_version_and_moves_its_functions(root: Path, server: MotoServer) -> None:
    layers, functions = layer_versions(server), function_versions(server)
    config = root / "layers" / "aws-utilities" / "layer.toml"
    config.write_text(config.read_text().replace('"events",', '"events", "kms",'))
    output = ok(inv(root, server, "deploy", "--stage", STAGE))
    assert "aws-utilities: new content" in output
    assert layer_versions(server) == {**layers, "aws-utilities": layers["aws-utilities"] + 1}
    # Every function uses aws-utilities: each gets exactly one new version on its live alias.
    assert function_versions(server) == {name: count + 1 for name, count in functions.items()}
    newest = history(root, server)[-1]
    assert all(newest["layers"]["aws-utilities"]["arn"] in arns for arns in live_layers(server).values())


def live_configuration(server: MotoServer, name: str) -> dict[str, Any]:
    """What the function's `live` alias runs, read back as a user would."""
    config: dict[str, Any] = server.client("lambda").get_function_configuration(
        FunctionName=f"{PREFIX}-{name}", Qualifier="live"
    )
    return config


def test_memory_size_change_reaches_live(root: Path, server: MotoServer) -> None:
    """Issue 19: a configuration-only change moved $LATEST, left `live` on the old version and
    was still called verified."""
    functions = function_versions(server)
    template = root / "infra" / "template.yaml"
    text = template.read_text()
    before = "Handler: data_validation.handler.lambda_handler"
    start = text.index(before)
    assert text.index("      MemorySize: 1769\n", start) < text.index("FeatureEngineeringFunction:")
    template.write_text(text[:start] + text[start:].replace("      MemorySize: 1769\n", "      MemorySize: 3008\n", 1))
    output = ok(inv(root, server, "deploy", "--stage", STAGE))
    assert live_configuration(server, "data-validation")["MemorySize"] == 3008
    assert "(verified)" in output
    assert "compared each function's 'live' version with the template and the build" in output
    # Only that function got a new version; the others stay where they were.
    assert function_versions(server) == {**functions, "data-validation": functions["data-validation"] + 1}


def test_environment_change_reaches_live(root: Path, server: MotoServer) -> None:
    functions = function_versions(server)
    template = root / "infra" / "template.yaml"
    text = template.read_text()
    cache_dir = "        MODEL_CACHE_DIR: /tmp/models\n"
    assert text.count(cache_dir) == 1  # in Globals: every function gets the new variable
    template.write_text(text.replace(cache_dir, cache_dir + "        LOG_LEVEL: DEBUG\n"))
    output = ok(inv(root, server, "deploy", "--stage", STAGE))
    assert "(verified)" in output
    for name in (*FUNCTIONS, "merge"):
        assert live_configuration(server, name)["Environment"]["Variables"]["LOG_LEVEL"] == "DEBUG", name
    assert function_versions(server) == {name: count + 1 for name, count in functions.items()}
    assert live_configuration(server, "data-validation")["MemorySize"] == 3008  # the earlier change stays


def test_a_drifted_live_alias_is_named_and_fails_verification(root: Path, server: MotoServer) -> None:
    """`live` moved back by hand to the version before the two changes above: the next deploy's
    verification names each difference and fails; it is never called verified."""
    client = server.client("lambda")
    name = f"{PREFIX}-data-validation"
    current = client.get_alias(FunctionName=name, Name="live")["FunctionVersion"]
    old = str(int(current) - 2)
    assert client.get_function_configuration(FunctionName=name, Qualifier=old)["MemorySize"] == 1769
    latest = history(root, server)[-1]["number"]
    drifted = f"DataValidationFunction: the stage runs version {old}, code "
    client.update_alias(FunctionName=name, Name="live", FunctionVersion=old)
    try:
        # `inv releases` and the deploy itself say that the stage does not run its latest record.
        listed = ok(inv(root, server, "releases", "--stage", STAGE))
        result = inv(root, server, "deploy", "--stage", STAGE)
    finally:
        client.update_alias(FunctionName=name, Name="live", FunctionVersion=current)
    for said in (listed, result.stdout + result.stderr):
        assert f"Drift: stage {STAGE!r} does not run its latest recorded release {latest} " in said, said[-4000:]
        assert drifted in said and f"its history says version {current}, code " in said
        assert f"Fix: `inv rollback --stage {STAGE} --to {latest}`" in said
    assert "Drift:" not in ok(inv(root, server, "releases", "--stage", STAGE))  # the alias is back
    output = result.stdout + result.stderr
    assert result.returncode == 14, output[-4000:]
    assert "Traceback" not in output and "(verified)" not in output
    assert f"DataValidationFunction live (version {old}): MemorySize 1769, template says 3008" in output
    assert f"DataValidationFunction live (version {old}): Environment LOG_LEVEL is not set, template says 'DEBUG'" in (
        output
    )


def test_cloudformation_failure_leaves_the_previous_release_serving(root: Path, server: MotoServer) -> None:
    before = history(root, server)[-1]
    live = live_layers(server)
    server.client("s3").create_bucket(Bucket="taken-bucket")

    def add_taken_bucket(good: str) -> str:
        """A copy of the (scan-clean) data bucket whose name is already taken: CloudFormation fails it."""
        start, end = good.index("  DataBucket:\n"), good.index("\n  ModelBucket:")
        taken = good[start:end].replace("  DataBucket:\n", "  TakenBucket:\n", 1)
        taken = taken.replace(
            "BucketName: !Sub lambda-ml-layers-${Stage}-data-${AWS::AccountId}", "BucketName: taken-bucket"
        )
        return good[:end] + "\n" + taken + good[end:]

    # And a handler change, so the failed update also touched the functions.
    with edited(
        (root / "infra" / "template.yaml", add_taken_bucket),
        (root / "services" / "predictions" / "predictions" / "handler.py", lambda text: text + "\n# changed\n"),
    ):
        result = inv(root, server, "deploy", "--stage", STAGE)
    output = result.stdout + result.stderr
    assert result.returncode == 13, output[-4000:]
    assert "TakenBucket" in output and "Traceback" not in output
    assert_says_where_the_stage_is(output, before, history(root, server))
    assert server.client("cloudformation").describe_stacks(StackName=PREFIX)["Stacks"][0]["StackStatus"] == (
        "UPDATE_ROLLBACK_COMPLETE"
    )
    assert live_layers(server) == live


def test_failing_smoke_run_is_rolled_back(root: Path, server: MotoServer) -> None:
    before = history(root, server)[-1]
    live = live_layers(server)
    handler = root / "services" / "data_validation" / "data_validation" / "handler.py"
    with edited((handler, lambda text: text + '\nraise RuntimeError("broken at init on purpose")\n')):
        result = inv(root, server, "deploy", "--stage", STAGE)
    output = result.stdout + result.stderr
    assert result.returncode == 14, output[-4000:]
    assert "broken at init on purpose" in output
    assert f"Rolled back to release {before['number']}" in output
    restored = history(root, server)[-1]
    assert restored["kind"] == "restore" and restored["restores"] == before["number"]
    assert live_layers(server) == live
    code = {name: info["code_sha256"] for name, info in restored["functions"].items()}
    assert code == {name: info["code_sha256"] for name, info in before["functions"].items()}


def test_rollback_to_release_1_publishes_no_layer(root: Path, server: MotoServer) -> None:
    releases = history(root, server)
    assert len(releases) >= 3
    layers = layer_versions(server)
    output = ok(inv(root, server, "rollback", "--stage", STAGE, "--to", "1"))
    assert "release 1's code and layers (verified)" in output
    assert layer_versions(server) == layers
    first = releases[0]
    arns = {layer: info["arn"] for layer, info in first["layers"].items()}
    assert live_layers(server)["data-validation"] == [arns["core-data-science"], arns["aws-utilities"]]
    # Release 1's configuration too, verified against its own template.
    assert live_configuration(server, "data-validation")["MemorySize"] == 1769
    assert "LOG_LEVEL" not in live_configuration(server, "merge")["Environment"]["Variables"]
    newest = history(root, server)[-1]
    assert newest["kind"] == "rollback" and newest["restores"] == 1
    table = ok(inv(root, server, "releases", "--stage", STAGE))
    assert "rollback of 1" in table and f"current: release {newest['number']}" in table


def test_dry_run_shows_the_change_set_and_executes_nothing(root: Path, server: MotoServer) -> None:
    before, functions = history(root, server), function_versions(server)
    handler = root / "services" / "predictions" / "predictions" / "handler.py"
    with edited((handler, lambda text: text + "\n# a change the dry run must not deploy\n")):
        output = ok(inv(root, server, "deploy", "--stage", STAGE, "--dry-run"))
    assert "Dry run: the change set above was not executed" in output
    assert "PredictionsFunction" in output  # the change set sam showed
    assert function_versions(server) == functions
    assert history(root, server) == before


def interrupted(root: Path, server: MotoServer, signum: signal.Signals, marker: str, *args: str) -> tuple[int, str]:
    """`inv *args` sent `signum` to its whole process group (a terminal's Ctrl-C, or CI cancelling
    a job) two seconds after the line starting with `marker`: its exit code and output."""
    process = subprocess.Popen(
        [str(INV), "--search-root", str(root), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=environment(server),
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith(marker):
            time.sleep(2)  # sam is packaging or creating the change set
            os.killpg(process.pid, signum)
            break
    rest, _ = process.communicate(timeout=600)
    return process.returncode, "".join(seen) + rest


def assert_live_runs_the_current_release(root: Path, server: MotoServer) -> None:
    """Each live alias (read back with boto3) runs the code and layers of the release `inv releases` calls current."""
    current = history(root, server)[-1]
    client = server.client("lambda")
    for logical, recorded in current["functions"].items():
        version = client.get_alias(FunctionName=recorded["name"], Name="live")["FunctionVersion"]
        config = client.get_function_configuration(FunctionName=recorded["name"], Qualifier=version)
        running = ([layer["Arn"] for layer in config.get("Layers", [])], config["CodeSha256"])
        assert running == (recorded["layers"], recorded["code_sha256"]), (logical, current["number"])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl_c", "sigterm"])
def test_interrupted_sam_deploy_leaves_a_recorded_release(
    root: Path, server: MotoServer, signum: signal.Signals
) -> None:
    before, live = history(root, server)[-1], live_layers(server)
    handler = root / "services" / "predictions" / "predictions" / "handler.py"
    with edited((handler, lambda text: text + f"\n# interrupted change ({signum.name})\n")):
        code, output = interrupted(root, server, signum, "==> sam deploy", "deploy", "--stage", STAGE)
    assert code == 130, output[-4000:]
    assert "Interrupted: waiting for CloudFormation" in output and "Traceback" not in output
    assert_says_where_the_stage_is(output, before, history(root, server))
    assert live_layers(server) == live
    assert_live_runs_the_current_release(root, server)
    log = BuildPaths.of(root).logs
    newest = max(log.glob(f"deploy-{STAGE}-*.jsonl"), key=lambda path: path.stat().st_mtime)
    assert str(newest) in newest.read_text().splitlines()[-1]  # the log's last line: where it is, said on the way out
    # The next deploy works as usual (the interrupted change may never have started).
    after = ok(inv(root, server, "deploy", "--stage", STAGE))
    assert "is on release" in after or "Nothing changed" in after


def test_ctrl_c_during_a_rollback_leaves_a_recorded_release(root: Path, server: MotoServer) -> None:
    code, output = interrupted(
        root, server, signal.SIGINT, "==> sam deploy of release", "rollback", "--stage", STAGE, "--to", "1", "--yes"
    )
    assert code == 130, output[-4000:]
    assert "Interrupted: waiting for CloudFormation" in output and "Traceback" not in output
    assert f"Stage {STAGE!r} " in output.split("Interrupted: waiting for CloudFormation")[1]  # says where it is
    assert_live_runs_the_current_release(root, server)


def test_a_rollback_failing_its_checks_restores_the_release_it_left(root: Path, server: MotoServer) -> None:
    before = history(root, server)[-1]
    s3 = server.client("s3")
    key = f"releases/{PREFIX}/0001.json"
    bucket = next(
        b["Name"] for b in s3.list_buckets()["Buckets"] if s3.list_objects_v2(Bucket=b["Name"], Prefix=key)["KeyCount"]
    )
    original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    record = json.loads(original)
    # Release 1 now says one function ran other code than it did: its rollback cannot pass its checks.
    first = sorted(record["functions"])[0]
    record["functions"][first]["code_sha256"] = "bm90IHRoZSBjb2RlIHRoYXQgcmFu"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(record).encode())
    try:
        result = inv(root, server, "rollback", "--stage", STAGE, "--to", "1", "--yes")
    finally:
        s3.put_object(Bucket=bucket, Key=key, Body=original)
    output = result.stdout + result.stderr
    assert result.returncode == 14, output[-4000:]
    assert "Traceback" not in output and f"Rolled back to release {before['number']}" in output
    newest = history(root, server)[-1]
    assert newest["kind"] == "restore" and newest["restores"] == before["number"], newest
    assert_live_runs_the_current_release(root, server)


def test_a_rollback_whose_sam_deploy_fails_restores_the_release_it_left(root: Path, server: MotoServer) -> None:
    def add_bucket(good: str) -> str:
        """A second data bucket with a fixed name, which only this release has."""
        start, end = good.index("  DataBucket:\n"), good.index("\n  ModelBucket:")
        extra = good[start:end].replace("  DataBucket:\n", "  ArchiveBucket:\n", 1)
        extra = extra.replace(
            "BucketName: !Sub lambda-ml-layers-${Stage}-data-${AWS::AccountId}", "BucketName: rollback-archive"
        )
        return good[:end] + "\n" + extra + good[end:]

    with edited((root / "infra" / "template.yaml", add_bucket)):
        ok(inv(root, server, "deploy", "--stage", STAGE))
    with_bucket = history(root, server)[-1]
    ok(inv(root, server, "deploy", "--stage", STAGE))  # the bucket goes again
    before = history(root, server)[-1]
    assert before["number"] == with_bucket["number"] + 1
    # The name is taken (the bucket retained by its DeletionPolicy, or someone took it): returning to the
    # release with that bucket fails in CloudFormation.
    s3 = server.client("s3")
    if "rollback-archive" not in {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket="rollback-archive")
    result = inv(root, server, "rollback", "--stage", STAGE, "--to", str(with_bucket["number"]), "--yes")
    output = result.stdout + result.stderr
    assert result.returncode == 13, output[-4000:]
    assert "ArchiveBucket" in output and "Traceback" not in output
    assert f"The rollback to release {with_bucket['number']} of stage {STAGE!r} failed" in output, output[-4000:]
    assert_says_where_the_stage_is(output, before, history(root, server))
    assert_live_runs_the_current_release(root, server)


def test_real_stage_needs_credentials_of_its_pinned_account(root: Path, server: MotoServer) -> None:
    count = uploads(server)
    credentials = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")
    no_credentials = inv(
        root,
        server,
        "deploy",
        "--stage",
        "dev",
        unset=credentials,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    assert no_credentials.returncode == 12, (no_credentials.stdout + no_credentials.stderr)[-3000:]
    assert "No AWS credentials for stage 'dev'" in no_credentials.stderr
    # Credentials that work, of another account than the one dev is pinned to (the emulator's
    # account is 123456789012; reached through AWS_ENDPOINT_URL as any AWS endpoint would be).
    stages = root / "infra" / "stages.toml"
    with edited((stages, lambda text: text.replace("[dev]\n", '[dev]\naccount_id = "999999999999"\n'))):
        wrong_account = inv(root, server, "deploy", "--stage", "dev", AWS_ENDPOINT_URL=server.endpoint_url)
    assert wrong_account.returncode == 12, (wrong_account.stdout + wrong_account.stderr)[-3000:]
    assert "pinned to AWS account 999999999999" in wrong_account.stderr
    assert "credentials are for account 123456789012" in wrong_account.stderr
    for result in (no_credentials, wrong_account):
        assert "Traceback" not in result.stdout + result.stderr and PLANTED_SECRET not in result.stdout
    assert uploads(server) == count


def test_gate_failure_uploads_nothing(root: Path, server: MotoServer) -> None:
    before, count = history(root, server), uploads(server)
    config = root / "layers" / "core-data-science" / "layer.toml"
    with edited((config, lambda text: text.replace("budget_mb = 100", "budget_mb = 10"))):
        result = inv(root, server, "deploy", "--stage", STAGE)
    output = result.stdout + result.stderr
    assert result.returncode == 7, output[-3000:]
    assert "core-data-science" in output and "Traceback" not in output
    # A template cfn-lint refuses (Lambda's memory maximum), which the build itself does not check.
    template = root / "infra" / "template.yaml"
    too_much = ("      MemorySize: 1024\n", "      MemorySize: 99999\n")
    with edited((template, lambda text: text.replace(*too_much, 1))):
        lint = inv(root, server, "deploy", "--stage", STAGE)
    lint_output = lint.stdout + lint.stderr
    assert lint.returncode == 12, lint_output[-3000:]
    assert "sam validate --lint" in lint_output and "99999" in lint_output and "Traceback" not in lint_output
    assert uploads(server) == count
    assert history(root, server) == before


def test_refusals(root: Path, server: MotoServer) -> None:
    count = uploads(server)
    unknown = inv(root, server, "deploy", "--stage", "prd")
    assert unknown.returncode == 2 and "Perhaps you meant 'prod'?" in unknown.stderr
    missing = inv(root, server, "rollback", "--stage", STAGE, "--to", "99")
    assert missing.returncode == 16 and "has no release 99" in missing.stderr
    no_sam = inv(root, server, "rollback", "--stage", STAGE, SAM_CLI="/nonexistent/sam")
    assert no_sam.returncode == 17 and "SAM CLI was not found" in no_sam.stderr
    unreachable = inv(root, server, "releases", "--stage", STAGE, LAMBDA_ML_LAYERS_LOCAL_AWS="http://localhost:9")
    assert unreachable.returncode == 8 and "does not answer" in unreachable.stderr
    no_terminal = inv(root, server, "deploy", "--stage", "prod")
    assert no_terminal.returncode == 12 and "--yes" in no_terminal.stderr
    lock = BuildPaths.of(root).deploy_dir(STAGE).with_suffix(".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.seek(0)
        held.truncate()  # as a deploy does: the file keeps the last owner's line
        held.write(json.dumps({"command": "inv deploy --stage local", "pid": os.getpid(), "started": "now"}))
        held.flush()
        busy = inv(root, server, "rollback", "--stage", STAGE)
    assert busy.returncode == 15 and f"pid {os.getpid()}" in busy.stderr
    for result in (unknown, missing, no_sam, unreachable, no_terminal, busy):
        assert "Traceback" not in result.stdout + result.stderr
    assert uploads(server) == count
