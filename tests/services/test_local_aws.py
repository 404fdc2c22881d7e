"""The local AWS endpoint: a real moto_server process on a free localhost port."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from lambda_ml_layers.local.moto_server import LocalAWSError, find_moto_server, moto_server, start_moto_server


def test_server_lifecycle_and_reset() -> None:
    import boto3

    with moto_server() as server:
        assert server.endpoint_url == f"http://localhost:{server.port}"
        s3 = boto3.client(
            "s3",
            endpoint_url=server.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket="lifecycle")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["lifecycle"]
        server.reset()
        assert s3.list_buckets()["Buckets"] == []
        process = server.process
    assert process.poll() is not None  # stopped on exit
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://localhost:{server.port}/moto-api/data.json", timeout=2)


def test_missing_executable_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MOTO_SERVER", str(tmp_path / "nope"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("lambda_ml_layers.local.moto_server.ROOT", tmp_path)
    with pytest.raises(LocalAWSError, match="moto_server was not found"):
        find_moto_server()


def test_a_server_that_dies_at_start_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "moto_server"
    broken.write_text("#!/bin/sh\necho 'cannot start: broken install' >&2\nexit 3\n")
    broken.chmod(0o755)
    with pytest.raises(LocalAWSError, match="broken install"):
        start_moto_server(broken, timeout=10)
