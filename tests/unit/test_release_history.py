"""The release history's rules: each record checked when read, a bad or missing record named by
its key with the fix, numbers never reused, a stored template checked against its record."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from lambda_ml_layers.core.errors import ReleaseError
from lambda_ml_layers.deploy.release_history import (
    History,
    Release,
    assemble_history,
    record_problems,
    refuse_unknown_latest,
    release_table,
    template_sha256,
)

STACK = "lambda-ml-layers-local"
PREFIX = f"releases/{STACK}/"
BUCKET = "sam-bucket"
TEMPLATE: dict[str, Any] = {"Resources": {"F": {"Type": "AWS::Lambda::Function"}}}


def record(number: int, **changes: Any) -> dict[str, Any]:
    release = Release(
        number=number,
        kind="deploy",
        time="2026-12-06T12:00:00Z",
        stage="local",
        stack_name=STACK,
        git_commit="0123456789abcdef",
        git_dirty=False,
        caller_account="123456789012",
        caller_arn="arn:aws:iam::123456789012:user/a",
        layers={"core": {"logical_id": "C", "arn": f"arn:aws:lambda:r:1:layer:core:{number}", "sha256": "s"}},
        functions={"F": {"name": "f", "version": str(number), "layers": [], "code_sha256": "c"}},
        template_sha256=template_sha256(TEMPLATE),
        parameters={},
    )
    return {**asdict(release), **changes}


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


def history_of(objects: dict[int, bytes | None], extra: tuple[str, ...] = ()) -> History:
    """A history from records by number (None: only the template is there)."""
    keys = [f"{PREFIX}{n:04d}.template.json" for n in objects] + list(extra)
    bodies = {f"{PREFIX}{n:04d}.json": b for n, b in objects.items() if b is not None}
    return assemble_history(PREFIX, sorted(keys + list(bodies)), bodies, STACK, BUCKET, {})


def test_a_good_record_has_no_problem() -> None:
    assert record_problems(body(record(3)), 3, STACK) == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{not json", "it is not JSON"),
        (b"[1, 2]", "it holds a JSON list, not an object"),
        (body({k: v for k, v in record(3).items() if k not in ("layers", "caller_arn")}), "lacks caller_arn, layers"),
        (body({**record(3), "number": "3"}), "number is str"),
        (body(record(3, git_dirty=1)), "git_dirty is int"),
        (body({**record(3), "number": True}), "number is True"),
        (body(record(5)), "it says release 5, but its key says 3"),
        (body(record(3, stack_name="other")), "belongs to stack 'other'"),
        (body(record(3, schema=2)), "newer than this checkout reads"),
        (body(record(3, schema=0)), "it has schema 0, not 1"),
        (body(record(3, kind="hotfix")), "kind is 'hotfix'"),
        (body(record(3, template_sha256="abc")), "template_sha256 is not a sha256 digest"),
        (body(record(3, layers={"core": {"arn": 1}})), "layers.core lacks its arn or sha256"),
        (body(record(3, functions={"F": {"name": "f"}})), "functions.F lacks its layers list"),
    ],
)
def test_each_bad_record_says_what_is_wrong(raw: bytes, expected: str) -> None:
    assert expected in "; ".join(record_problems(raw, 3, STACK))


def test_one_bad_record_leaves_the_rest_of_the_history() -> None:
    history = history_of({1: body(record(1)), 2: b"{not json", 3: body(record(3))})
    assert [r.number for r in history.releases] == [1, 3]
    assert [(b.number, b.missing) for b in history.bad] == [(2, False)]
    assert history.unknown_latest() is None and history.next_number == 4
    [problem] = history.problems()
    assert f"s3://{BUCKET}/{PREFIX}0002.json cannot be used: it is not JSON" in problem
    assert "list-object-versions" in problem and "The number 2 stays used" in problem
    table = release_table(history)
    assert "UNREADABLE" in table and "current: release 3" in table and problem in table


def test_a_bad_latest_record_makes_the_current_release_unknown() -> None:
    history = history_of({1: body(record(1)), 2: body({"number": 2})})
    assert history.current is not None and history.current.number == 1
    assert history.unknown_latest() is not None and history.next_number == 3
    assert "current: unknown (release 2 has no good record; the newest good record is release 1)" in release_table(
        history
    )
    with pytest.raises(ReleaseError) as refused:
        refuse_unknown_latest(history, "local")
    message = str(refused.value)
    assert f"{PREFIX}0002.json" in message and "inv rollback --stage local --to 1" in message
    assert "recorded as release 3" in message and "Nothing was uploaded" in message


def test_a_deleted_latest_record_is_noticed_and_its_number_not_reused() -> None:
    history = history_of({1: body(record(1)), 2: body(record(2)), 3: None})
    assert [r.number for r in history.releases] == [1, 2]
    [missing] = history.bad
    assert missing.missing and missing.key == f"{PREFIX}0003.json" and history.next_number == 4
    assert f"though {PREFIX}0003.template.json exist(s)" in missing.message(BUCKET)
    assert "MISSING" in release_table(history)
    with pytest.raises(ReleaseError):
        refuse_unknown_latest(history, "local")


def test_a_gap_is_noticed() -> None:
    keys = (f"{PREFIX}0001.json", f"{PREFIX}0003.json")
    bodies = {keys[0]: body(record(1)), keys[1]: body(record(3))}
    history = assemble_history(PREFIX, list(keys), bodies, STACK, BUCKET, {})
    [gap] = history.bad
    assert gap.number == 2 and "a later release exists" in gap.problem
    assert history.unknown_latest() is None


def test_a_renumbered_record_is_refused_not_taken_for_another() -> None:
    history = history_of({1: body(record(1)), 2: body(record(1))})
    assert [r.number for r in history.releases] == [1]
    assert "it says release 1, but its key says 2" in history.bad[0].problem


def test_the_last_good_copy_is_offered_as_the_fix(tmp_path: Path) -> None:
    copy = tmp_path / "0002.json"
    keys = [f"{PREFIX}0001.json", f"{PREFIX}0002.json"]
    bodies = {keys[0]: body(record(1)), keys[1]: b"{not json"}
    history = assemble_history(PREFIX, keys, bodies, STACK, BUCKET, {2: copy})
    assert f"aws s3 cp {copy} s3://{BUCKET}/{PREFIX}0002.json" in history.problems()[0]


def test_objects_outside_the_naming_are_ignored() -> None:
    history = history_of({1: body(record(1))}, extra=(f"{PREFIX}notes.txt", f"{PREFIX}0001.json.bak"))
    assert [r.number for r in history.releases] == [1] and history.bad == ()


def test_the_template_digest_ignores_key_order() -> None:
    assert template_sha256({"a": 1, "b": [1, {"c": 2, "d": 3}]}) == template_sha256(
        {"b": [1, {"d": 3, "c": 2}], "a": 1}
    )
