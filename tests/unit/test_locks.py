from pathlib import Path

import pytest

from lambda_ml_layers.build.locking import check_locks, check_tooling_lock
from lambda_ml_layers.config.locks import lock_problems, parse_lock, parse_requirements_in
from lambda_ml_layers.config.project import load_project
from lambda_ml_layers.core.errors import LockError
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
    with pytest.raises(LockError, match=r"requirements.txt:1: .*cannot read the line"):
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


# --- a lock holds only hashed pins and pip-compile's comments (issue 9 item 16) ---------

HASHED = "six==1.17.0 \\\n    --hash=sha256:aaaa\n    # via -r requirements.in\n"


@pytest.mark.parametrize(
    "line",
    ["-e .", "--index-url https://example.invalid/simple", "-r ../other.txt", "--extra-index-url x", "-c c.txt"],
)
def test_an_option_line_in_a_lock_is_refused_naming_file_and_line(line: str) -> None:
    with pytest.raises(LockError) as error:
        parse_lock(HASHED + line + "\n", "layers/x/requirements.txt")
    assert f"layers/x/requirements.txt:4: {line[:80]!r} is an option line" in str(error.value)
    assert "nox -s lock" in str(error.value)


def test_an_option_on_a_pins_continuation_line_is_refused() -> None:
    with pytest.raises(LockError, match=r"L:1: .* has '--index-url x' after the pin"):
        parse_lock("six==1.17.0 \\\n    --index-url x \\\n    --hash=sha256:aaaa\n", "L")


def test_two_pins_of_one_package_are_refused() -> None:
    text = HASHED + "Six==1.16.0 \\\n    --hash=sha256:bbbb\n"
    with pytest.raises(LockError) as error:
        parse_lock(text, "L")
    assert "L:4: pins six again (1.16.0); line 1 pinned it already" in str(error.value)


def test_lock_check_refuses_a_lock_with_an_option_line(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    lock = project.layer_dir("tinylayer") / "requirements.txt"
    lock.write_text(lock.read_text() + "-e .\n")
    with pytest.raises(LockError) as error:
        check_locks(load_project(project.root))
    assert "tinylayer/requirements.txt:" in str(error.value) and "'-e .' is an option line" in str(error.value)


def test_every_lock_of_the_repository_is_strictly_readable() -> None:
    locks = [REPO / "layers" / "resolution.txt", *REPO.glob("layers/*/requirements.txt")]
    locks += [*REPO.glob("requirements/*.txt"), *REPO.glob("services/*/requirements.txt")]
    for lock in sorted(locks):
        parse_lock(lock.read_text(), str(lock))  # a function's lock may pin nothing


def test_a_tooling_lock_with_an_option_line_names_the_tooling_lock_session(tmp_path: Path) -> None:
    (tmp_path / "dev.in").write_text("six\n")
    (tmp_path / "dev.txt").write_text("--index-url https://example.invalid/simple\n" + HASHED)
    with pytest.raises(LockError) as error:
        check_tooling_lock(tmp_path / "dev.in", tmp_path / "dev.txt")
    assert "dev.txt:1:" in str(error.value) and "`nox -s lock_tooling`" in str(error.value)
