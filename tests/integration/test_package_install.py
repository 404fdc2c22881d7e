"""`pip install .` into a fresh virtualenv installs the whole engine: every package of the source
tree, and the script folders the target interpreter runs by path; each package then imports from
the installed copy (needs setuptools from the index)."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.project_factory import REPO

pytestmark = pytest.mark.realwheels

ENGINE = REPO / "lambda_ml_layers"


def source_packages() -> list[str]:
    return sorted(".".join(init.parent.relative_to(REPO).parts) for init in ENGINE.rglob("__init__.py"))


def engine_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in (root / "lambda_ml_layers").rglob("*.py")}


def test_pip_install_dot_installs_every_subpackage_and_each_imports(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"  # a copy: pip must not leave build/ or *.egg-info in the repository
    shutil.copytree(
        REPO / "lambda_ml_layers", checkout / "lambda_ml_layers", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(REPO / "pyproject.toml", checkout)
    fresh = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=True).create(fresh)
    python = fresh / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--quiet", "."],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-3000:]

    packages = source_packages()
    assert len(packages) >= 16  # the phase folders and their subfolders, not one listed package
    site = subprocess.run(
        [
            str(python),
            "-c",
            "import lambda_ml_layers, pathlib; print(pathlib.Path(lambda_ml_layers.__file__).parent.parent)",
        ],
        cwd=tmp_path,  # not the checkout: the import must come from site-packages
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert engine_files(Path(site)) == engine_files(REPO)
    # The engine's third-party imports (moto, boto3, rich...) come from the tooling lock, not from
    # pyproject: lend the fresh venv the tooling's site-packages, after its own.
    (Path(site) / "tooling.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    imports = subprocess.run(
        [str(python), "-c", f"import importlib; [importlib.import_module(name) for name in {packages!r}]"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert imports.returncode == 0, imports.stderr[-3000:]
