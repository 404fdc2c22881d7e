"""The one TOML reader: every unreadable file is one ConfigError naming the file, the line and the fix."""

from pathlib import Path

import pytest

from lambda_ml_layers.config.stages import load_stage
from lambda_ml_layers.core.errors import ConfigError
from lambda_ml_layers.core.toml_files import read_toml, toml_text, write_toml


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nothere\.toml: file is missing"):
        read_toml(tmp_path / "nothere.toml")


def test_a_byte_order_mark_is_named_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbfbudget_mb = 1\n")
    with pytest.raises(ConfigError) as error:
        read_toml(path)
    assert f"{path}:1: starts with a byte order mark" in str(error.value)
    assert "UTF-8 without BOM" in str(error.value)


def test_broken_toml_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("a = 1\n\nb = = 2\n")
    with pytest.raises(ConfigError) as error:
        read_toml(path)
    assert str(path) in str(error.value)
    assert "line 3" in str(error.value)


def test_text_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('a = "x"\nb = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.toml:2: not UTF-8"):
        read_toml(path)


def test_a_folder_in_place_of_the_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "dir.toml").mkdir()
    with pytest.raises(ConfigError, match=r"dir\.toml: cannot be read"):
        read_toml(tmp_path / "dir.toml")


def test_the_stage_reader_uses_it(tmp_path: Path) -> None:
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "samconfig.toml").write_bytes(b"\xef\xbb\xbfversion = 0.1\n")
    with pytest.raises(ConfigError, match="byte order mark"):
        load_stage(tmp_path, "dev")


def test_a_written_copy_reads_back_the_same(tmp_path: Path) -> None:
    data = {
        "description": 'quotes " and \\ and é and \n',
        "budget_mb": 12.5,
        "target_mb": 10,
        "base_layers": ["core"],
        "build": {"bytecode": "pyc", "strip_shared_objects": False},
        "strip": {"rules": [{"name": "r", "directories": ["x"]}]},
        "layer_tests": {"allowed_import_failures": {"a.b": "why"}},
    }
    write_toml(tmp_path / "copy.toml", data)
    assert read_toml(tmp_path / "copy.toml") == data


def test_a_value_toml_cannot_hold_is_refused() -> None:
    with pytest.raises(ConfigError, match="cannot write"):
        toml_text({"a": None})
