"""pip's failures told apart, from output captured in real runs (tests/unit/pip_outputs/README.md),
and one real pip run against an index that is not there."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest

from lambda_ml_layers.build.pip_failures import (
    PipTarget,
    explain_pip_failure,
    network_failure,
    no_space_path,
    releases_in_folder,
)
from lambda_ml_layers.build.pip_runner import install_for_target
from lambda_ml_layers.config.locks import LockedPackage
from lambda_ml_layers.core.errors import InstallError
from lambda_ml_layers.core.runtimes import RUNTIMES

OUTPUTS = Path(__file__).parent / "pip_outputs"
TARGET = PipTarget(RUNTIMES["python3.12"], "x86_64", Path("/work/build/tmp/core/site"), "/tmp")
OFFLINE = PipTarget(RUNTIMES["python3.12"], "x86_64", Path("/work/build/tmp/core/site"), "/tmp", links_only=True)


def captured(name: str) -> str:
    return (OUTPUTS / f"{name}.out").read_text()


def message(output: str, probe: str = "", where: PipTarget = TARGET, empty: frozenset[str] = frozenset()) -> str:
    return str(explain_pip_failure(captured(output), {"six": "1.16.0"}, where, probe and captured(probe), empty))


def test_an_unreachable_index_is_named_with_pips_reason() -> None:
    text = message("unreachable_index_retries")
    assert "could not reach the package index (http://127.0.0.1:9/simple)" in text
    assert "[Errno 111] Connection refused" in text
    assert "PIP_INDEX_URL" in text and "No wheel" not in text


def test_without_retries_pip_is_silent_and_the_probe_tells_the_index_was_unreachable() -> None:
    assert network_failure(captured("unreachable_index_no_retries")) is None
    text = message("unreachable_index_no_retries", "probe_unreachable_index")
    assert "could not reach the package index (http://127.0.0.1:9/simple)" in text
    assert "[Errno 111] Connection refused" in text


def test_an_index_whose_name_does_not_resolve() -> None:
    text = message("unknown_host", "probe_unknown_host")
    assert "could not reach the package index (https://pypi.invalid/simple)" in text
    assert "Failed to resolve 'pypi.invalid' ([Errno -2] Name or service not known)" in text


def test_a_plain_http_index_pip_ignores() -> None:
    text = message("untrusted_http_index", "probe_unknown_host")
    assert text.startswith("pip ignored the package index on pypi.invalid: it is plain http")
    assert "PIP_TRUSTED_HOST=pypi.invalid" in text
    # An ignored extra index beside a working one is not the cause: the probe decides.
    beside_pypi = captured("untrusted_http_index").replace(
        "Looking in indexes: http://pypi.invalid/simple",
        "Looking in indexes: https://pypi.org/simple, http://pypi.invalid/simple",
    )
    other = str(explain_pip_failure(beside_pypi, {"six": "1.16.0"}, TARGET, captured("probe_six")))
    assert other.startswith("No wheel of six==1.16.0 fits")


def test_a_missing_find_links_folder() -> None:
    text = message("find_links_missing", "", OFFLINE)
    assert "The --find-links folder /nonexistent does not exist" in text
    assert "No wheel of six==1.16.0 fits" not in text


def test_an_empty_find_links_folder() -> None:
    folder = "/tmp/pipcap/emptydir"  # the folder the captured run looked in
    text = message("find_links_empty", "probe_find_links_empty", OFFLINE, frozenset({folder}))
    assert f"No wheel of six==1.16.0 in {folder}, the only place pip looked" in text
    assert f"({folder} is empty)" in text


def test_a_release_candidate_is_older_than_its_release() -> None:
    files = ["six-2.0.0rc1-py3-none-any.whl", "six-2.0.0-py3-none-any.whl", "six-10.0.0.tar.gz", "six-1.9.tar.gz"]
    assert releases_in_folder(files, "six") == ["10.0.0", "2.0.0", "2.0.0rc1", "1.9"]


def test_a_find_links_folder_with_the_release_for_another_platform_only() -> None:
    files = ["six-1.16.0-cp311-cp311-macosx_11_0_arm64.whl", "Six-1.15.0.tar.gz", "numpy-2.2.6-cp312-none-any.whl"]
    assert releases_in_folder(files, "six") == ["1.16.0", "1.15.0"]
    text = str(
        explain_pip_failure(captured("find_links_empty"), {"six": "1.16.0"}, OFFLINE, "", frozenset(), ["1.16.0"])
    )
    assert text.startswith("No wheel of six==1.16.0 fits python3.12 on x86_64")


def test_a_package_that_does_not_exist() -> None:
    output = captured("no_such_package")
    error = explain_pip_failure(
        output, {"lambda-ml-layers-no-such-package-xyz": "1.0"}, TARGET, captured("probe_no_such_package")
    )
    assert "There is no package named lambda-ml-layers-no-such-package-xyz on https://pypi.org/simple" in str(error)
    assert "requirements.in" in str(error) and error.exit_code == 4


def test_a_version_that_does_not_exist() -> None:
    text = str(explain_pip_failure(captured("no_such_version"), {"six": "99.0.0"}, TARGET, captured("probe_six")))
    assert "six has no release 99.0.0 on https://pypi.org/simple (its latest: 1.17.0, 1.16.0" in text
    assert "fits" not in text


def test_a_release_without_a_wheel_for_the_runtime_keeps_the_platform_message() -> None:
    text = str(
        explain_pip_failure(captured("no_wheel_for_platform"), {"numpy": "1.21.0"}, TARGET, captured("probe_numpy"))
    )
    assert text.startswith("No wheel of numpy==1.21.0 fits python3.12 on x86_64")
    assert "glibc <= 2.34" in text


def test_a_full_target_disk_names_the_file_being_written_not_the_traceback() -> None:
    output = captured("disk_full")
    assert len(output.splitlines()) > 20  # pip's traceback
    text = str(explain_pip_failure(output, {"numpy": "2.2.6"}, TARGET))
    assert text.startswith("No space left on device while pip installed numpy==2.2.6 into /work/build/tmp/core/site")
    assert "(writing /tmp/pipcap/full/site/numpy.libs/libscipy_openblas64_-56d6093b.so)" in text
    assert "df -h" in text and "Traceback" not in text and len(text.splitlines()) <= 3


def test_a_full_temporary_folder_has_no_path_from_pip_but_names_both_folders() -> None:
    output = captured("disk_full_tmpdir")
    assert no_space_path(output) is None
    text = str(explain_pip_failure(output, {"numpy": "2.2.6"}, TARGET))
    assert "No space left on device" in text and "/work/build/tmp/core/site" in text and "/tmp" in text


def test_anything_else_shows_pips_last_lines() -> None:
    text = str(explain_pip_failure("Collecting six\nERROR: something new\n", {"six": "1.16.0"}, TARGET))
    assert "pip could not install six==1.16.0" in text and "ERROR: something new" in text


def test_real_pip_against_a_closed_port_says_the_index_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    # The user's own pip settings: an index nothing listens on, and no retries, as a user may configure.
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "1")
    package = LockedPackage("six", "1.16.0", ("sha256:" + "0" * 64,), ())
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "site"
        started = time.monotonic()
        with pytest.raises(InstallError) as caught:
            install_for_target([package], target, RUNTIMES["python3.12"], "x86_64", Path(folder) / "cache")
        assert time.monotonic() - started < 60
        assert not (Path(folder) / "site.requirements.txt").exists()
    text = str(caught.value)
    assert "could not reach the package index (http://127.0.0.1:9/simple)" in text
    assert "Connection refused" in text
