"""An AWS SDK layer is verified by creating a boto3 client for every service it keeps, in the
target interpreter, so a layer that cannot make one is never called verified.

The SDK here is a tiny boto3/botocore pair built on the spot that, like the real one, can make a
client only for a service whose data is in botocore/data. tests/integration/test_real_layers.py
checks that the real aws-utilities build made a client for each of its kept services."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lambda_ml_layers.build.build_layers import BuildRequest, build_layers
from lambda_ml_layers.core.errors import VerifyError
from tests.project_factory import TinyProject, make_wheel, resolution_text, tiny_project, write_layer

SESSION = """import os

import botocore


class UnknownServiceError(Exception):
    pass


class Session:
    def __init__(self, **settings):
        self.settings = settings

    def client(self, name):
        model = os.path.join(os.path.dirname(botocore.__file__), "data", name, "service-2.json")
        if not os.path.exists(model):
            raise UnknownServiceError(f"Unknown service: {name!r}")
        return object()
"""

KEEP = '[aws_sdk]\nkeep_services = ["s3", "sqs"]\n'
# A rule too eager for the kept sqs service: imports still work, its client cannot be made.
EAGER_RULE = """
[[strip.rules]]
name = "eager"
why = "a mistake this check must catch"
paths = ["botocore/data/sqs/service-2.json"]
"""


def sdk_project(tmp_path: Path, layer_toml: str) -> TinyProject:
    project = tiny_project(tmp_path)
    data = {f"botocore/data/{s}/{f}": "{}" for s in ("s3", "sqs", "ec2") for f in ("service-2.json", "waiters-2.json")}
    botocore = make_wheel(project.wheels_dir, "botocore", "1.0.0", {"botocore/__init__.py": "", **data})
    boto3 = make_wheel(
        project.wheels_dir,
        "boto3",
        "1.0.0",
        {"boto3/__init__.py": "from boto3 import session\n", "boto3/session.py": SESSION},
    )
    shutil.rmtree(project.layer_dir("tinylayer"))  # the project's only layer is the SDK one
    write_layer(project.root, "aws", [boto3, botocore], "budget_mb = 1\n" + layer_toml, direct={"boto3"})
    (project.root / "layers" / "resolution.txt").write_text(resolution_text([boto3, botocore]))
    return project


def build(project: TinyProject) -> dict:
    return build_layers(BuildRequest(root=project.root, find_links=project.wheels_dir))


def test_a_kept_service_whose_client_cannot_be_made_fails_verification(tmp_path: Path) -> None:
    project = sdk_project(tmp_path, KEEP + EAGER_RULE)
    with pytest.raises(VerifyError) as error:
        build(project)
    message = str(error.value)
    assert "boto3 client 'sqs' (kept in [aws_sdk] keep_services): UnknownServiceError" in message
    assert "'s3'" not in message
    assert "drop the service from [aws_sdk] keep_services" in message
    assert not project.output_zip("aws").exists()


def test_a_layer_that_makes_every_kept_client_is_verified(tmp_path: Path) -> None:
    project = sdk_project(tmp_path, KEEP)
    [layer] = build(project)["layers"]
    assert layer["verified"] is True
    verify_notes = next(step["notes"] for step in layer["steps"] if step["step"] == "verify")
    assert verify_notes[0].endswith("2 boto3 clients created")
