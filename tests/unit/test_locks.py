from pathlib import Path

import pytest

from lambda_ml_layers.config import load_project
from lambda_ml_layers.errors import LockError
from lambda_ml_layers.locking import check_locks
from lambda_ml_layers.locks import lock_problems, parse_lock, parse_requirements_in
from tests.project_factory import REPO, tiny_project

LOCK = """\
pandas==3.1.1 \\
    --hash=sha256:aaaa \\
    --hash=sha256:bbbb
    # via -r requirements.in
numpy==2.5.5 \\
    --hash=sha256:cccc
    # via
    #   -r requirements.in
    #   pandas
"""


def test_parses_pins_hashes_and_provenance() -> None:
    lock = parse_lock(LOCK)
    assert lock["pandas"].version == "3.1.1"
    assert lock["pandas"].hashes == ("sha256:aaaa", "sha256:bbbb")
    assert lock["numpy"].via == ("-r requirements.in", "pandas")


def test_current_lock_has_no_problems() -> None:
    requirements = parse_requirements_in("pandas\nnumpy>=2\n", "in")
    assert lock_problems(requirements, parse_lock(LOCK), parse_lock(LOCK), "lock") == []


def test_hashless_lock_is_refused_naming_the_packages() -> None:
    problems = lock_problems(
        parse_requirements_in("six\n", "in"), parse_lock("six==1.17.0\n    # via -r requirements.in\n"), None, "L"
    )
    assert any("no --hash for six" in p and "nox -s lock" in p for p in problems)


def test_lock_is_stale_when_requirements_in_adds_or_narrows_or_drops() -> None:
    lock = parse_lock(LOCK)
    added = lock_problems(parse_requirements_in("pandas\nnumpy\njoblib\n", "in"), lock, None, "L")
    assert any("joblib is in requirements.in but not locked" in p for p in added)
    narrowed = lock_problems(parse_requirements_in("pandas<3\nnumpy\n", "in"), lock, None, "L")
    assert any("asks for pandas<3" in p for p in narrowed)
    dropped = lock_problems(parse_requirements_in("pandas\n", "in"), lock, None, "L")
    assert any("no longer lists it" in p and "numpy" in p for p in dropped)


def test_a_lock_outside_the_shared_resolution_is_refused() -> None:
    resolution = parse_lock("pandas==3.1.1\nnumpy==2.4.0\n")
    problems = lock_problems(parse_requirements_in("pandas\nnumpy\n", "in"), parse_lock(LOCK), resolution, "L")
    assert any("numpy==2.5.5" in p and "2.4.0" in p for p in problems)


def test_garbage_in_a_lock_is_a_clear_error() -> None:
    with pytest.raises(LockError, match="cannot read the line"):
        parse_lock("this is not a lock\n", "layers/x/requirements.txt")


def test_repository_locks_are_current() -> None:
    assert len(check_locks(load_project(REPO))) == 3


def test_check_locks_lists_every_bad_layer(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    lock = project.layer_dir("tinylayer") / "requirements.txt"
    lock.write_text("\n".join(line for line in lock.read_text().splitlines() if "--hash" not in line))
    lock.write_text(lock.read_text().replace(" \\", ""))
    with pytest.raises(LockError) as error:
        check_locks(load_project(project.root))
    assert "layers/tinylayer/requirements.txt: no --hash for tinypkg" in str(error.value)
