"""The deploy's pickle guard against a real moto server over HTTP: the stage's model bucket (found
as the stack's ModelBucket) holds the issue's pickled GaussianNB; a published ml-libraries with
`[prune]` on that lost sklearn.naive_bayes is refused naming the class and the keep line, and the
shipped whole layer reads nothing and refuses nothing."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambda_ml_layers.config.project import load_project
from lambda_ml_layers.config.stages import load_stage
from lambda_ml_layers.core.errors import PrunedModuleMissing
from lambda_ml_layers.deploy.model_gate import check_stage_models, model_bucket
from lambda_ml_layers.deploy.stage_session import StageSession
from lambda_ml_layers.local.moto_server import MotoServer, moto_server
from tests.project_factory import REPO
from tests.unit.test_model_artifacts import FIXTURES
from tests.unit.test_prune_build import built, with_prune_on

pytestmark = pytest.mark.emulator

STACK = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Resources": {"ModelBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "models-of-local"}}},
}


@pytest.fixture(scope="module")
def server() -> Iterator[MotoServer]:
    with moto_server() as running:
        yield running


def published(output_dir: Path, pruned: list[str]) -> None:
    """ml-libraries as the build publishes it: the zip and its manifest beside it."""
    output_dir.mkdir(parents=True)
    zip_path = output_dir / "ml-libraries.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        for module in ("sklearn/__init__", "sklearn/base", "joblib/__init__", "numpy/__init__"):
            archive.writestr(f"python/{module}.pyc", b"")
    build = built("ml-libraries", zip_path, pruned)
    (output_dir / "ml-libraries.json").write_text(json.dumps(build.manifest()))


def test_a_model_in_the_stage_s_bucket_refuses_a_pruned_layer_that_lost_its_class(
    server: MotoServer, tmp_path: Path
) -> None:
    stage = load_stage(REPO, "local")
    session = StageSession(stage, server.endpoint_url)
    output_dir = tmp_path / "layers" / "python3.12-x86_64"
    published(output_dir, ["sklearn.naive_bayes"])
    whole = load_project(REPO)
    pruned = with_prune_on(whole, "ml-libraries")
    assert model_bucket(session) is None  # no stack yet: nothing to read, nothing refused
    assert [layer.name for layer in check_stage_models(pruned, session, output_dir)] == ["ml-libraries"]

    cloudformation = server.client("cloudformation")
    cloudformation.create_stack(StackName=stage.stack_name, TemplateBody=json.dumps(STACK))
    assert model_bucket(session) == "models-of-local"
    s3 = server.client("s3")
    s3.put_object(Bucket="models-of-local", Key="models/current/model.json", Body=b"{}")
    s3.put_object(
        Bucket="models-of-local", Key="models/v1/model.joblib", Body=(FIXTURES / "gaussian_nb.joblib").read_bytes()
    )

    assert check_stage_models(whole, session, output_dir) == []  # shipped whole: nothing read or refused
    with pytest.raises(PrunedModuleMissing) as error:
        check_stage_models(pruned, session, output_dir)
    message = str(error.value)
    assert "so nothing was deployed" in message
    assert "s3://models-of-local/models/v1/model.joblib needs sklearn.naive_bayes.GaussianNB to load." in message
    assert "add 'sklearn.naive_bayes' to [prune] keep (" in message and "ml-libraries/layer.toml:" in message
    cloudformation.delete_stack(StackName=stage.stack_name)
