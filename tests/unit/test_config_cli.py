"""Config and lock problems as a user meets them: `inv build-layers` exits with the error's code,
one message per cause, no traceback."""

from pathlib import Path

import pytest

from tests.project_factory import tiny_project
from tests.unit.test_cli import run_build


@pytest.mark.parametrize(
    ("defaults", "message"),
    [(None, "defaults.toml: file is missing"), (b"", "not set"), (b"\xef\xbb\xbf[build]\n", "byte order mark")],
)
def test_a_bad_defaults_toml_is_one_message_and_exit_2(tmp_path: Path, defaults: bytes | None, message: str) -> None:
    project = tiny_project(tmp_path)
    path = project.root / "layers" / "defaults.toml"
    if defaults is None:
        path.unlink()
    else:
        path.write_bytes(defaults)
    result = run_build(project)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert sum(line.strip().startswith("- ") for line in result.stderr.splitlines()) <= 1, result.stderr


def test_a_lock_with_an_option_line_exits_3_naming_the_line(tmp_path: Path) -> None:
    project = tiny_project(tmp_path)
    lock = project.layer_dir("tinylayer") / "requirements.txt"
    lines = lock.read_text().count("\n")
    lock.write_text(lock.read_text() + "--index-url https://example.invalid/simple\n")
    result = run_build(project)
    assert result.returncode == 3
    assert (
        f"tinylayer/requirements.txt:{lines + 1}: '--index-url https://example.invalid/simple' is an option line"
        in (result.stderr)
    )
    assert "Traceback" not in result.stderr + result.stdout
