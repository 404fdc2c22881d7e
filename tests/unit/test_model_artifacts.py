"""The pickle guard: a model artifact names the classes it needs (read with pickletools, never
unpickled), and a pruned layer that lost one of their modules is refused at build time, naming
the class, the artifact and the keep line; whole layers refuse nothing.

model_artifacts/gaussian_nb*.joblib are real joblib 1.6 files of a fitted scikit-learn 1.9
GaussianNB ({"model", "feature_names"}: an object array, so a nested pickle too), written with
`compress=3` (zlib) and uncompressed (raw, aligned array data inside the pickle stream).
"""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import lzma
import pickle
import zlib
from pathlib import Path

import pytest

from lambda_ml_layers.build.pruning.models import artifact_problems, check_model_artifacts
from lambda_ml_layers.build.pruning.pickle_modules import Global, UnreadablePickle, pickle_globals
from lambda_ml_layers.config.project import load_project
from lambda_ml_layers.core.errors import PrunedModuleMissing
from tests.project_factory import REPO
from tests.unit.test_prune_build import PRUNE, TRACE, build, built, pruned_project, with_prune_on

FIXTURES = Path(__file__).parent / "model_artifacts"
GAUSSIAN_NB = Global("sklearn.naive_bayes", "GaussianNB")

# Hand-written pickles of an object of class a.b.C, as each protocol spells the class.
PROTOCOL_4 = b"\x80\x04\x8c\x03a.b\x94\x8c\x01C\x94\x93\x94)\x81\x94."  # STACK_GLOBAL from memoized strings
PROTOCOL_2 = b"\x80\x02ca.b\nC\nq\x00)\x81q\x01."  # GLOBAL
PROTOCOL_0 = b"(ia.b\nC\np0\n."  # INST


@pytest.mark.parametrize("name", ["gaussian_nb.joblib", "gaussian_nb_uncompressed.joblib"])
def test_a_real_joblib_model_names_every_class_past_its_array_data(name: str) -> None:
    found = pickle_globals((FIXTURES / name).read_bytes())
    assert found[0] == GAUSSIAN_NB
    # numpy's reconstructor comes from the nested pickle of the object array, after raw array data.
    assert Global("numpy._core.multiarray", "_reconstruct") in found
    assert Global("joblib.numpy_pickle", "NumpyArrayWrapper") in found


def legacy_lzma(data: bytes) -> bytes:
    """joblib's compress="lzma": the .lzma format (magic 5d 00), not .xz."""
    return lzma.compress(data, format=lzma.FORMAT_ALONE)


@pytest.mark.parametrize(
    "compress", [lambda b: b, zlib.compress, gzip.compress, bz2.compress, lzma.compress, legacy_lzma]
)
@pytest.mark.parametrize("data", [PROTOCOL_4, PROTOCOL_2, PROTOCOL_0])
def test_each_protocol_and_compression_names_the_class(data: bytes, compress: object) -> None:
    assert pickle_globals(compress(data)) == [Global("a.b", "C")]  # type: ignore[operator]


def test_python_s_own_pickles_name_their_classes() -> None:
    import collections

    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        data = pickle.dumps([collections.OrderedDict(a=1), (1, 2)], protocol=protocol)
        assert pickle_globals(data) == [Global("collections", "OrderedDict")], protocol


def test_what_is_no_pickle_is_said_plainly() -> None:
    with pytest.raises(UnreadablePickle, match="looks gzip-compressed, but does not decompress"):
        pickle_globals(b"\x1f\x8b not really gzip")
    with pytest.raises(UnreadablePickle, match="not a pickle this reader can follow"):
        pickle_globals(b"\x80\x04\x95\xff")
    problems = artifact_problems({"services/x/model.pkl": b"hello"}, [])
    assert problems and problems[0].startswith("services/x/model.pkl could not be read as a pickle")


def test_the_issue_s_gaussian_nb_is_refused_by_a_pruned_layer_and_loads_from_a_whole_one(tmp_path: Path) -> None:
    zip_path = tmp_path / "ml-libraries.zip"
    import zipfile

    with zipfile.ZipFile(zip_path, "w") as archive:
        for module in ("sklearn/__init__", "sklearn/base", "joblib/__init__", "numpy/__init__"):
            archive.writestr(f"python/{module}.pyc", b"")
    root = tmp_path / "project"
    (root / "build" / "model").mkdir(parents=True)
    (root / "build" / "model" / "model.joblib").write_bytes((FIXTURES / "gaussian_nb.joblib").read_bytes())
    whole = dataclasses.replace(load_project(REPO), root=root)
    builds = {"ml-libraries": built("ml-libraries", zip_path, ["sklearn.naive_bayes"])}
    check_model_artifacts(whole, builds)  # the shipped, whole layer: nothing refused

    pruned = with_prune_on(whole, "ml-libraries")
    with pytest.raises(PrunedModuleMissing) as error:
        check_model_artifacts(pruned, builds)
    message = str(error.value)
    assert "build/model/model.joblib needs sklearn.naive_bayes.GaussianNB to load." in message
    assert "sklearn.naive_bayes was pruned from layer ml-libraries" in message
    assert "add 'sklearn.naive_bayes' to [prune] keep (" in message and "ml-libraries/layer.toml:" in message
    assert error.value.exit_code == 25


def test_a_function_s_pickle_needing_a_pruned_module_fails_the_build_and_publishes_nothing(tmp_path: Path) -> None:
    # tinypkg.unused is pruned (neither traced nor kept); a model shipped in a function's folder needs it.
    project = pruned_project(tmp_path)
    build(project)
    before = project.published_files()
    model = project.root / "services" / "scorer" / "scorer" / "model.pkl"
    model.parent.mkdir(parents=True)
    model.write_bytes(PROTOCOL_4.replace(b"\x03a.b", b"\x0etinypkg.unused").replace(b"\x01C", b"\x05Model"))
    with pytest.raises(PrunedModuleMissing) as error:
        build(project)
    assert "services/scorer/scorer/model.pkl needs tinypkg.unused.Model to load." in str(error.value)
    assert project.published_files() == before
    # Kept (here: traced), the module is in the zip and the same model passes.
    (project.layer_dir("tinylayer") / "trace.txt").write_text(TRACE + "module tinypkg.unused\n")
    build(project)
    # Whole (pruning off), nothing is refused either.
    (project.layer_dir("tinylayer") / "trace.txt").write_text(TRACE)
    (project.layer_dir("tinylayer") / "layer.toml").write_text(PRUNE.replace("[prune]\n", "[prune]\nenabled = false\n"))
    build(project)
