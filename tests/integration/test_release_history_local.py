"""The release history never lies, on the local stage (a copy of the checkout, the patched moto
server over HTTP, the real `sam deploy`), in order on one stage:

  deploy            release 1
  two operators     two ReleaseStore users, each with its own build/ folder, record at once:
                    releases 2 and 3, never one number twice
  tampered template 0001.template.json changed: `inv rollback --to 1` refuses, deploys nothing
  bad old record    `{not json` in 0002.json: releases, layer-usage, cold-starts, size-report and
                    deploy work around it and name it; prune-layers and rollback --to 2 refuse
  bad latest record 0003.json without fields: deploy refuses (16), uploads nothing; rollback
                    --to 1 is the way on, recorded as release 4
  deleted latest    0004.json deleted: named as missing, deploy refuses, number 4 never reused
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from lambda_ml_layers.config.stages import load_stage
from lambda_ml_layers.core.errors import StageBusy
from lambda_ml_layers.deploy.deployed_state import NOT_ASKED, read_stack
from lambda_ml_layers.deploy.releases import ReleaseStore
from lambda_ml_layers.deploy.stage_session import StageSession
from lambda_ml_layers.local.moto_server import MotoServer, moto_server
from tests.integration.test_deploy_local import (
    PREFIX,
    copy_checkout,
    function_versions,
    history,
    inv,
    live_layers,
    ok,
    uploads,
)

if TYPE_CHECKING:
    from lambda_ml_layers.deploy.release_history import Release

pytestmark = pytest.mark.emulator

STAGE = "local"
RECORDS = f"releases/{PREFIX}/"


@pytest.fixture(scope="module")
def server() -> Iterator[MotoServer]:
    with moto_server() as running:
        yield running


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_checkout(tmp_path_factory.mktemp("history-checkout"))


def bucket(server: MotoServer) -> str:
    [name] = [b["Name"] for b in server.client("s3").list_buckets()["Buckets"] if "samclisourcebucket" in b["Name"]]
    return str(name)


def put(server: MotoServer, key: str, body: bytes) -> None:
    server.client("s3").put_object(Bucket=bucket(server), Key=RECORDS + key, Body=body)


def read(server: MotoServer, key: str) -> bytes:
    data: bytes = server.client("s3").get_object(Bucket=bucket(server), Key=RECORDS + key)["Body"].read()
    return data


def failed(result: Any, code: int) -> str:
    output = str(result.stdout + result.stderr)
    assert result.returncode == code, output[-6000:]
    assert "Traceback" not in output
    return output


def stage_state(server: MotoServer) -> tuple[Any, ...]:
    """What a refused command must leave exactly as it was."""
    return function_versions(server), live_layers(server), uploads(server)


def operator(root: Path, server: MotoServer, build: Path) -> ReleaseStore:
    """A second person's view of the stage: its own build/ folder, the same emulator."""
    return ReleaseStore(StageSession(load_stage(root, STAGE), server.endpoint_url), build / "releases" / STAGE)


def test_first_deploy_is_release_1(root: Path, server: MotoServer) -> None:
    output = ok(inv(root, server, "deploy", "--stage", STAGE))
    assert "Stage 'local' is on release 1 (verified)." in output


def test_the_stage_is_asked_for_reserved_concurrency_only_by_the_checks(root: Path, server: MotoServer) -> None:
    session = StageSession(load_stage(root, STAGE), server.endpoint_url)
    asked: list[str] = []
    session.client("lambda").meta.events.register(
        "before-parameter-build.lambda.GetFunctionConcurrency", lambda params, **_: asked.append(params["FunctionName"])
    )
    plain = read_stack(session)
    assert asked == [] and plain.functions
    assert {f.reserved_concurrency for f in plain.functions.values()} == {None}
    assert all(f.unread == {"ReservedConcurrentExecutions": NOT_ASKED} for f in plain.functions.values())
    checked = read_stack(session, concurrency=True)
    assert sorted(asked) == sorted(f.name for f in checked.functions.values())
    assert all(f.unread == {} for f in checked.functions.values())


def test_if_none_match_is_sent_by_botocore_and_honoured_by_stock_moto(stock_server: MotoServer) -> None:
    s3 = stock_server.client("s3")
    sent: list[str | None] = []
    s3.meta.events.register(
        "before-send.s3.PutObject", lambda request, **_: sent.append(request.headers.get("If-None-Match"))
    )
    s3.create_bucket(Bucket="claims")
    s3.put_object(Bucket="claims", Key="0001.json", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as second:
        s3.put_object(Bucket="claims", Key="0001.json", Body=b"second", IfNoneMatch="*")
    assert second.value.response["Error"]["Code"] == "PreconditionFailed"
    assert sent == [b"*", b"*"] or sent == ["*", "*"]
    assert s3.get_object(Bucket="claims", Key="0001.json")["Body"].read() == b"first"


def test_two_operators_recording_at_once_get_two_numbers(root: Path, server: MotoServer, tmp_path: Path) -> None:
    stores = [operator(root, server, tmp_path / "alice"), operator(root, server, tmp_path / "bob")]
    histories = [store.history() for store in stores]  # both read release 1 as the latest
    listings: dict[str, int] = {"alice": 0, "bob": 0}
    for store, who in zip(stores, ("alice", "bob"), strict=True):
        store.session.client("s3").meta.events.register(
            "before-call.s3.ListObjectsV2", lambda who=who, **_: listings.__setitem__(who, listings[who] + 1)
        )
    current = histories[0].current
    assert current is not None and current.number == 1 and histories[1].next_number == 2
    template, report = stores[0].template(current), stores[0].build_report(current)
    said: dict[str, list[str]] = {"alice": [], "bob": []}
    recorded: dict[str, Release] = {}
    start = threading.Barrier(2)

    def record(store: ReleaseStore, who: str) -> None:
        release = replace(current, number=2, caller_arn=f"arn:aws:iam::123456789012:user/{who}", note=who)
        start.wait()
        recorded[who] = store.record(release, template, report, said[who].append)

    threads = [threading.Thread(target=record, args=(s, w)) for s, w in zip(stores, ("alice", "bob"), strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(r.number for r in recorded.values()) == [2, 3]
    second = "alice" if recorded["alice"].number == 3 else "bob"
    first = "bob" if second == "alice" else "alice"
    [message] = said[second]
    assert f"Release number 2 was taken meanwhile by arn:aws:iam::123456789012:user/{first}" in message
    assert said[first] == []
    # Each reads the history afresh before its claim and once more after losing one; the mirror
    # then holds its own record without a further read.
    assert listings == {first: 1, second: 2}
    for who, release in recorded.items():
        mirrored = json.loads((tmp_path / who / "releases" / STAGE / f"{release.number:04d}.json").read_text())
        assert mirrored["note"] == who
    for who, release in recorded.items():  # each record is the one its operator wrote, none overwritten
        assert json.loads(read(server, f"{release.number:04d}.json"))["note"] == who
    numbers = [r["number"] for r in history(root, server)]
    assert numbers == [1, 2, 3]


def test_a_tampered_template_is_refused_by_rollback(root: Path, server: MotoServer) -> None:
    original = read(server, "0001.template.json")
    tampered = json.loads(original)
    tampered["Metadata"] = {"Tampered": "an extra value"}
    put(server, "0001.template.json", json.dumps(tampered).encode())
    before, records = stage_state(server), history(root, server)
    try:
        output = failed(inv(root, server, "rollback", "--stage", STAGE, "--to", "1"), 16)
    finally:
        put(server, "0001.template.json", original)
    assert f"Release 1's template s3://{bucket(server)}/{RECORDS}0001.template.json has sha256" in output
    assert "it was changed after the release" in output and "Nothing was deployed." in output
    assert stage_state(server) == before and history(root, server) == records


def test_a_bad_older_record_is_named_and_worked_around(root: Path, server: MotoServer) -> None:
    good = read(server, "0002.json")
    put(server, "0002.json", b"{not json")
    key = f"s3://{bucket(server)}/{RECORDS}0002.json"

    table = ok(inv(root, server, "releases", "--stage", STAGE))
    assert "UNREADABLE" in table and f"Release 2: {key} cannot be used: it is not JSON" in table
    assert "current: release 3" in table
    # This checkout's copy of release 2 (read before it went bad) is kept and offered as the fix.
    assert f"aws s3 cp {root}/build/releases/{STAGE}/0002.json {key}" in table
    assert json.loads((root / "build" / "releases" / STAGE / "0002.json").read_text()) == json.loads(good)
    listed = inv(root, server, "releases", "--stage", STAGE, "--json")
    assert key in ok(listed) and [r["number"] for r in history(root, server)] == [1, 3]

    for command in (("layer-usage",), ("cold-starts",)):
        result = inv(root, server, *command, "--stage", STAGE)
        ok(result)
        assert f"Warning: Release 2: {key} cannot be used" in result.stderr, command
    assert "release 3 of stage local" in ok(inv(root, server, "size-report", "--stage", STAGE))

    before = stage_state(server)
    pruned = failed(inv(root, server, "prune-layers", "--stage", STAGE, "--keep", "1"), 28)
    assert key in pruned and "Nothing was deleted." in pruned
    refused = failed(inv(root, server, "rollback", "--stage", STAGE, "--to", "2"), 16)
    assert "cannot return to release 2" in refused and key in refused
    assert stage_state(server) == before

    deployed = ok(inv(root, server, "deploy", "--stage", STAGE))
    assert f"Warning: Release 2: {key} cannot be used" in deployed
    # moto's first redeploy after a fresh stack changes the stored template, so this deploy may
    # record a release: if it does, it is 4 (2 is bad, not free).
    assert "Nothing changed: stage 'local' stays on release 3." in deployed or "is on release 4 (verified)" in deployed


def test_a_bad_latest_record_stops_deploy_and_rollback_is_the_way_on(root: Path, server: MotoServer) -> None:
    latest = history(root, server)[-1]["number"]
    record = json.loads(read(server, f"{latest:04d}.json"))
    del record["functions"]
    put(server, f"{latest:04d}.json", json.dumps(record).encode())
    key = f"s3://{bucket(server)}/{RECORDS}{latest:04d}.json"
    table = ok(inv(root, server, "releases", "--stage", STAGE))
    good = latest - 1 if latest == 4 else 1
    assert f"current: unknown (release {latest} has no good record; the newest good record is release {good})" in table

    before = stage_state(server)
    refused = failed(inv(root, server, "deploy", "--stage", STAGE), 16)
    assert f"{key} cannot be used: it lacks functions" in refused
    assert f"`inv rollback --stage {STAGE} --to {good}` (recorded as release {latest + 1})" in refused
    assert "Nothing was uploaded." in refused and stage_state(server) == before
    no_target = failed(inv(root, server, "rollback", "--stage", STAGE), 16)
    assert "name the release to return to" in no_target

    output = ok(inv(root, server, "rollback", "--stage", STAGE, "--to", "1"))
    assert f"Rolling stage 'local' back from release {latest} to release 1." in output
    assert f"Stage 'local' is on release {latest + 1}: release 1's code and layers (verified)." in output
    assert history(root, server)[-1]["number"] == latest + 1


def test_a_deleted_latest_record_is_noticed_and_its_number_never_reused(root: Path, server: MotoServer) -> None:
    latest = history(root, server)[-1]["number"]
    server.client("s3").delete_object(Bucket=bucket(server), Key=f"{RECORDS}{latest:04d}.json")
    key = f"s3://{bucket(server)}/{RECORDS}{latest:04d}.json"
    missing = f"{key} is missing, though {RECORDS}{latest:04d}.report.json, {RECORDS}{latest:04d}.template.json"
    table = ok(inv(root, server, "releases", "--stage", STAGE))
    assert "MISSING" in table and missing in table and f"current: unknown (release {latest}" in table
    assert f"aws s3 cp {root}/build/releases/{STAGE}/{latest:04d}.json {key}" in table

    before = stage_state(server)
    refused = failed(inv(root, server, "deploy", "--stage", STAGE), 16)
    assert missing in refused and f"recorded as release {latest + 1}" in refused and stage_state(server) == before

    output = ok(inv(root, server, "rollback", "--stage", STAGE, "--to", "1"))
    assert f"Stage 'local' is on release {latest + 1}: release 1's code and layers (verified)." in output
    assert history(root, server)[-1]["number"] == latest + 1


def test_one_command_at_a_time_holds_the_stage_across_checkouts(root: Path, server: MotoServer, tmp_path: Path) -> None:
    first, second = operator(root, server, tmp_path / "a"), operator(root, server, tmp_path / "b")
    with first.lease("inv deploy --stage local", "arn:aws:iam::123456789012:user/first"):
        with (
            pytest.raises(StageBusy) as refused,
            second.lease("inv rollback --stage local", "arn:aws:iam::123456789012:user/second"),
        ):
            pytest.fail("two commands held the stage at once")
        said = str(refused.value)
        assert "`inv deploy --stage local` of arn:aws:iam::123456789012:user/first" in said
        assert f"pid {os.getpid()}," in said and f"{RECORDS}lease.json" in said and refused.value.exit_code == 15
    with second.lease("inv rollback --stage local", "arn:aws:iam::123456789012:user/second"):
        pass  # released by the first when it ended
    # A lease whose holder ended without releasing it (SIGKILL) is taken over, not a lock for ever:
    # here a pid above the kernel's pid_max, so no process has it.
    body = {"command": "inv deploy --stage local", "host": socket.gethostname(), "pid": 2**22 + 1, "start_ticks": 1}
    put(server, "lease.json", json.dumps(body).encode())
    with second.lease("inv deploy --stage local", "arn:aws:iam::123456789012:user/second"):
        assert json.loads(read(server, "lease.json"))["caller_arn"].endswith("user/second")
    assert "lease.json" not in str(server.client("s3").list_objects_v2(Bucket=bucket(server), Prefix=RECORDS))
