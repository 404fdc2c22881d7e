"""Nox sessions: locks, lint, type checks and the test tiers. The engine does the work.

Sessions that need only the tooling run in the environment nox itself runs in (the
project's .venv, set up by scripts/bootstrap.py); sessions that need the target
runtime's interpreter (lock) make their own virtualenv on that Python.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
sys.path.insert(0, str(ROOT))

from lambda_ml_layers.config import load_project  # noqa: E402
from lambda_ml_layers.errors import LayerToolError  # noqa: E402
from lambda_ml_layers.locking import check_locks, check_tooling_lock, compile_locks  # noqa: E402

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lock_check", "lint", "typecheck", "unit"]

# The runtime the layers are locked for; nox finds this interpreter on PATH.
LOCK_PYTHON = "3.12"
TOOLING_LOCKS = [("requirements/dev.in", "requirements/dev.txt"), ("requirements/lock.in", "requirements/lock.txt")]
HERE = sys.executable  # the tooling environment nox runs in


def _engine(session: nox.Session, action: object, *args: object) -> object:
    """Call the engine; show its errors as one clean message, not a traceback."""
    try:
        return action(*args)  # type: ignore[operator]
    except LayerToolError as exc:
        session.error(str(exc))


@nox.session(python=LOCK_PYTHON)
def lock(session: nox.Session) -> None:
    """Resolve all layers together and write each layer's hashed lock (`-- --upgrade` to upgrade)."""
    if session.posargs not in ([], ["--upgrade"]):
        session.error("Usage: nox -s lock [-- --upgrade]")
    session.install("--require-hashes", "-r", "requirements/lock.txt")
    project = _engine(session, load_project, ROOT)
    python = str(Path(session.bin) / "python")
    _engine(session, compile_locks, project, python, session.posargs == ["--upgrade"], session.log)


@nox.session(venv_backend="none")
def lock_tooling(session: nox.Session) -> None:
    """Regenerate requirements/*.txt, the hashed locks of the tooling itself."""
    from lambda_ml_layers.pip_runner import pip_compile

    for source, output in TOOLING_LOCKS:
        session.log(f"Locking {source} -> {output}")
        _engine(
            session, pip_compile, HERE, [Path(source).name], Path(output).name,
            ROOT / "requirements", None, True, [], "nox -s lock_tooling",
        )


@nox.session(venv_backend="none", tags=["ci"])
def lock_check(session: nox.Session) -> None:
    """Refuse any lock that is stale against its .in, lacks hashes, or leaves the shared resolution."""
    project = _engine(session, load_project, ROOT)
    for line in _engine(session, check_locks, project):  # type: ignore[union-attr]
        session.log(line)
    for source, output in TOOLING_LOCKS:
        session.log(_engine(session, check_tooling_lock, ROOT / source, ROOT / output))


@nox.session(venv_backend="none", tags=["ci"])
def lint(session: nox.Session) -> None:
    """ruff over everything."""
    session.run(HERE, "-m", "ruff", "check", ".")


@nox.session(venv_backend="none", tags=["ci"])
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the engine."""
    session.run(HERE, "-m", "mypy")


@nox.session(venv_backend="none", tags=["ci"])
def unit(session: nox.Session) -> None:
    """Fast tests: no network, tiny wheels built on the spot."""
    session.run(HERE, "-m", "pytest", "tests/unit", *session.posargs)


@nox.session(venv_backend="none", tags=["ci"])
def integration(session: nox.Session) -> None:
    """Slow tests: real layers from real PyPI wheels, built with `inv build-layers`."""
    session.run(HERE, "-m", "pytest", "tests/integration", *session.posargs)
