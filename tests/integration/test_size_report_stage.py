"""`inv size-report --stage local` as a user runs it: before the first release; against the build
report a deploy stored with its release (read back from the stage's bucket on the emulator); after
a rollback, which stores the report of the release it returned to; and refusing a release recorded
without one. One deploy and one rollback serve every check (each takes a minute or more)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lambda_ml_layers.core.paths import BuildPaths
from lambda_ml_layers.local.moto_server import moto_server
from tests.integration.test_deploy_local import STAGE, copy_checkout, inv, ok

pytestmark = pytest.mark.emulator


def report_keys(s3: Any) -> list[tuple[str, str]]:
    """(bucket, key) of every stored build report in the emulator."""
    return [
        (bucket["Name"], item["Key"])
        for bucket in s3.list_buckets()["Buckets"]
        for item in s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", [])
        if item["Key"].endswith(".report.json")
    ]


def test_size_report_against_the_local_stage(tmp_path: Path) -> None:
    root = copy_checkout(tmp_path / "checkout")
    paths = BuildPaths.of(root)
    with moto_server() as server:
        ok(inv(root, server, "build-layers"))
        before = inv(root, server, "size-report", "--stage", STAGE)
        text = ok(before)
        assert "this build against nothing (stage local has no release yet)" in text
        assert "no base to compare" in text
        assert paths.size_report_html.exists()

        assert "Stage 'local' is on release 1 (verified)." in ok(inv(root, server, "deploy", "--stage", STAGE))
        s3 = server.client("s3")
        [(bucket, key)] = report_keys(s3)
        assert key.endswith("/0001.report.json")
        stored = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        assert stored == json.loads(paths.default_report.read_text())
        # The report beside the record is not taken for a release.
        releases = json.loads(ok(inv(root, server, "releases", "--stage", STAGE, "--json")).split("\nLog:")[0])
        assert [r["number"] for r in releases] == [1]

        result = inv(root, server, "size-report", "--stage", STAGE, "--format", "json")
        data = json.loads(ok(result).split("\nPicture:")[0])
        assert data["base_label"] == "release 1 of stage local"
        assert {layer["status"] for layer in data["layers"]} == {"unchanged"}
        assert data["verdict"].startswith("OK: layers +0.00 MB vs release 1 of stage local")
        largest = max(stored["layers"][0]["package_bytes"].items(), key=lambda item: item[1])[0]
        assert largest in paths.size_report_html.read_text()

        markdown = ok(inv(root, server, "size-report", "--stage", STAGE, "--format", "markdown"))
        assert markdown.startswith("### Layer sizes: OK: layers +0.00 MB vs release 1 of stage local")

        # A rollback records a new release with the report of the release it returned to.
        ok(inv(root, server, "rollback", "--stage", STAGE, "--to", "1", "--yes"))
        stored_keys = report_keys(s3)
        assert [k.rsplit("/", 1)[-1] for _, k in stored_keys] == ["0001.report.json", "0002.report.json"]
        second = stored_keys[1][1]
        assert json.loads(s3.get_object(Bucket=bucket, Key=second)["Body"].read()) == stored
        json_text = ok(inv(root, server, "size-report", "--stage", STAGE, "--format", "json")).split("\nPicture:")[0]
        assert json.loads(json_text)["base_label"] == "release 2 of stage local"

        # A release recorded before deploys stored reports: exit 26, naming the release and the fixes.
        s3.delete_object(Bucket=bucket, Key=second)
        picture = paths.size_report_html.read_text()
        refused = inv(root, server, "size-report", "--stage", STAGE)
        assert refused.returncode == 26, refused.stdout + refused.stderr
        assert "Release 2 of stage 'local' was recorded without a build report" in refused.stderr
        assert "--base PATH" in refused.stderr and "inv deploy --stage local" in refused.stderr
        assert "Traceback" not in refused.stdout + refused.stderr
        assert paths.size_report_html.read_text() == picture
