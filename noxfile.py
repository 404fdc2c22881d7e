"""Nox sessions: locks, lint, type checks and the test tiers. The engine does the work.

Sessions that need only the tooling run in the environment nox itself runs in (the
project's .venv, set up by scripts/bootstrap.py); sessions that need the target
runtime's interpreter (lock) make their own virtualenv on that Python.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
sys.path.insert(0, str(ROOT))

from lambda_ml_layers.build.locking import check_locks, check_tooling_lock, compile_locks  # noqa: E402
from lambda_ml_layers.config.project import load_project  # noqa: E402
from lambda_ml_layers.core.errors import LayerToolError  # noqa: E402

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lock_check", "lint", "typecheck", "unit"]

# The runtime the layers are locked for; nox finds this interpreter on PATH.
LOCK_PYTHON = "3.12"
TOOLING_LOCKS = [
    ("requirements/dev.in", "requirements/dev.txt"),
    ("requirements/lock.in", "requirements/lock.txt"),
    ("requirements/service-tests.in", "requirements/service-tests.txt"),
    ("requirements/sam.in", "requirements/sam.txt"),
    ("requirements/checkov.in", "requirements/checkov.txt"),
    ("requirements/upstream-tests.in", "requirements/upstream-tests.txt"),
    ("requirements/lambda-runtime.in", "requirements/lambda-runtime.txt"),
]
HERE = sys.executable  # the tooling environment nox runs in


# nox ends every failed run with exit 1; the engine's code (docs/troubleshooting.md) says
# what failed, so the first one a session raised becomes the process's exit code.
_ENGINE_EXIT_CODES: list[int] = []


def _exit_with_engine_code() -> None:
    if _ENGINE_EXIT_CODES:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_ENGINE_EXIT_CODES[0])


atexit.register(_exit_with_engine_code)


def _engine(session: nox.Session, action: object, *args: object) -> object:
    """Call the engine; show its errors as one clean message, not a traceback, and keep their exit code."""
    try:
        return action(*args)  # type: ignore[operator]
    except LayerToolError as exc:
        _ENGINE_EXIT_CODES.append(exc.exit_code)
        session.error(f"{exc!s}\n(exit code {exc.exit_code}: see docs/troubleshooting.md)")


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
    from lambda_ml_layers.build.pip_runner import pip_compile

    for source, output in TOOLING_LOCKS:
        session.log(f"Locking {source} -> {output}")
        _engine(
            session,
            pip_compile,
            HERE,
            [Path(source).name],
            Path(output).name,
            ROOT / "requirements",
            None,
            True,
            [],
            "nox -s lock_tooling",
        )


@nox.session(venv_backend="none", tags=["ci"])
def lock_check(session: nox.Session) -> None:
    """Refuse any lock that is stale against its .in, lacks hashes, or leaves the shared resolution."""
    project = _engine(session, load_project, ROOT)
    for line in _engine(session, check_locks, project):  # type: ignore[union-attr]
        (session.warn if line.startswith("warning:") else session.log)(line)
    for source, output in TOOLING_LOCKS:
        session.log(_engine(session, check_tooling_lock, ROOT / source, ROOT / output))


@nox.session(venv_backend="none", tags=["ci"])
def lint(session: nox.Session) -> None:
    """ruff over everything: lint rules and formatting."""
    session.run(HERE, "-m", "ruff", "check", ".")
    session.run(HERE, "-m", "ruff", "format", "--check", ".")


@nox.session(venv_backend="none", tags=["ci"])
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the engine."""
    session.run(HERE, "-m", "mypy")


@nox.session(venv_backend="none", tags=["ci"])
def unit(session: nox.Session) -> None:
    """Fast tests: no network, tiny wheels built on the spot."""
    # Two workers: many tests wait on pip and the target interpreters (2 min -> 1.5 on two cores).
    workers = ["-n", "2"] if not session.posargs else []
    session.run(HERE, "-m", "pytest", "tests/unit", *workers, *session.posargs)


@nox.session(venv_backend="none", tags=["ci"])
def integration(session: nox.Session) -> None:
    """Slow tests: real layers from real PyPI wheels, built with `inv build-layers`."""
    # Two workers: most of the time goes to waiting on sam, moto and target interpreters, so two
    # modules side by side nearly halve the wall time even on two cores (groups: tests/integration/conftest.py).
    workers = ["-n", "2"] if not session.posargs else []
    slow = [f"--ignore={path}" for path in (*HISTORY_TESTS, ARM64_STAGE_TESTS)]
    session.run(HERE, "-m", "pytest", "tests/integration", *workers, *slow, "--durations=15", *session.posargs)


# Integration tests of minutes, each in a session of its own, outside `nox -t ci`.
HISTORY_TESTS = ("tests/integration/test_history_state_machine.py", "tests/integration/test_history_100k.py")


@nox.session(venv_backend="none")
def history(session: nox.Session) -> None:
    """Card history after re-uploads, through the template's state machine on the local emulator, each
    case against a clean stage: a correction, a superseded fan-out and a rejection at a few thousand
    rows, then a correction and a rejection landing during a 100k-row fan-out (about 20 minutes)."""
    session.run(HERE, "-m", "pytest", *HISTORY_TESTS, "--durations=5", *session.posargs)


ARM64_STAGE_TESTS = "tests/integration/test_arm64_stage.py"


@nox.session(venv_backend="none")
def arm64_stage(session: nox.Session) -> None:
    """The local stage set to arm64 + python3.13 in a copy: `inv deploy` builds the arm64 layers, deploys
    them to the emulator and passes its smoke run under qemu; arm64 python3.12 is refused (exit 31)."""
    session.run(HERE, "-m", "pytest", ARM64_STAGE_TESTS, "--durations=5", "-s", *session.posargs)


@nox.session(venv_backend="none")
def scaffold_walkthrough(session: nox.Session) -> None:
    """docs/new-layer-and-function.md followed in a temp copy (`inv new-layer`, `inv new-function`, build,
    layer-modules, trace, template_lint, layer_tests, a sandbox run); 23 minutes, so not in -t ci."""
    session.run(HERE, "-m", "pytest", "tests/scaffold", *session.posargs)


def _arch_option(session: nox.Session) -> str | None:
    """`-- --arch arm64`: the only option of layer_tests and upstream_tests; None tests this machine's arch."""
    if not session.posargs:
        return None
    if len(session.posargs) == 2 and session.posargs[0] == "--arch" and session.posargs[1] in ("x86_64", "arm64"):
        return str(session.posargs[1])
    session.error(f"Usage: nox -s {session.name} [-- --arch x86_64|arm64], not {' '.join(session.posargs)!r}")
    return None


@nox.session(venv_backend="none")
def deploy_race(session: nox.Session) -> None:
    """Two checkouts deploying the local stage at once against one emulator (slow: not in -t ci)."""
    session.run(HERE, "-m", "pytest", "tests/race", "--durations=5", *session.posargs)


@nox.session(python=["3.11", "3.12", "3.13"], tags=["ci"])
def layer_tests(session: nox.Session) -> None:
    """Each built layer zip, in its runtime's Python, against an unstripped install of its lock:
    every module that imports unstripped must import from the zip; smoke test; versions.
    `-- --arch arm64` tests the arm64 zips instead, in an arm64 interpreter under qemu."""
    from lambda_ml_layers.checks.layer_checks import run_layer_tests
    from lambda_ml_layers.checks.layer_test_plan import layer_test_plan

    arch = _arch_option(session)
    runtime = f"python{session.python}"
    python = str(Path(session.bin) / "python")
    project = _engine(session, load_project, ROOT)
    ci = bool(os.environ.get("CI"))  # in CI the default runtime's layers must be built
    plan = _engine(session, layer_test_plan, project, runtime, os.uname().machine, ci, arch)
    if plan.skip:  # type: ignore[union-attr]
        session.skip(plan.skip)  # type: ignore[union-attr]
    _engine(session, run_layer_tests, project, runtime, python, session.log, None, ci, arch)


# CI's arm64 check: the smallest that proves the arm64 path end to end on the runtime this machine
# can verify (python3.13: trixie's arm64 CPython under qemu; none exists for 3.12). One layer, built
# for arm64 (stripped with aarch64 binutils, every library load-checked and every module imported
# under qemu), then its zip read back: every shared object aarch64 and stripped.
ARM64_CI_RUNTIME = "python3.13"
ARM64_CI_LAYERS = ["core-data-science"]


@nox.session(venv_backend="none", tags=["ci"])
def arm64(session: nox.Session) -> None:
    """Build core-data-science for arm64 python3.13 (verified under qemu) and check its zip's binaries."""
    from lambda_ml_layers.build.build_layers import BuildRequest, build_layers
    from lambda_ml_layers.checks.zip_binaries import check_zip_binaries
    from lambda_ml_layers.core.paths import BuildPaths

    request = BuildRequest(root=ROOT, runtime=ARM64_CI_RUNTIME, arch="arm64", layers=ARM64_CI_LAYERS)
    _engine(session, build_layers, request)
    _engine(session, check_zip_binaries, BuildPaths.of(ROOT), ARM64_CI_RUNTIME, "arm64", session.log)


def _upstream_tests(session: nox.Session, fast: bool) -> None:
    """The selection of each layer's [upstream_tests] (or its CI subset), unstripped vs stripped.
    `-- --arch arm64` tests the arm64 zips instead, in an arm64 interpreter under qemu."""
    from lambda_ml_layers.checks.upstream_tests.run import failure_lines, has_layers_built, run_upstream_tests

    arch = _arch_option(session)
    runtime = f"python{session.python}"
    project = _engine(session, load_project, ROOT)
    if arch is None and not has_layers_built(project, runtime):  # type: ignore[arg-type]
        session.skip(
            f"no layers built for {runtime} on this machine's arch: run `inv build-layers --runtime {runtime}` "
            f"first (another arch's zips: `nox -s {session.name} -- --arch arm64`)"
        )
    # Natively the tools run from this venv; under qemu the engine installs them for the target
    # and this venv's interpreter only compiles bytecode for it.
    session.install("--require-hashes", "-r", "requirements/upstream-tests.txt")
    python = str(Path(session.bin) / "python")
    results = _engine(session, run_upstream_tests, project, runtime, python, fast, session.log, arch)
    failures = failure_lines(results or {})  # type: ignore[arg-type]
    if failures:
        session.error("Tests that pass unstripped fail from the built layers:\n" + "\n".join(failures))


@nox.session(python=["3.11", "3.12", "3.13"])
def upstream_tests(session: nox.Session) -> None:
    """The libraries' own test suites (each layer's whole [upstream_tests] selection) against the
    built layers, and against an unstripped install of the same lock: fail on stripped-only failures.
    `-- --arch arm64`: the arm64 zips, under qemu."""
    _upstream_tests(session, fast=False)


@nox.session(python=["3.11", "3.12", "3.13"], tags=["ci"])
def upstream_tests_fast(session: nox.Session) -> None:
    """upstream_tests on each suite's `fast` subset: what CI runs (natively). `-- --arch arm64`: the
    arm64 zips under qemu (not in CI: see README's slow sessions)."""
    _upstream_tests(session, fast=True)


# --- Pipeline services (issue 3): handler tests and template lint --------------------
# The handlers run on the layers' packages, which need the layers' Python (numpy 2.5 has
# no 3.11 wheels), so service_tests makes its own venv on that Python and installs
# exactly what the layer locks pin. The moto server runs from the tooling venv.
SERVICE_PYTHON = LOCK_PYTHON


def _merged_layer_requirements(session: nox.Session) -> Path:
    """One hash-pinned file with every layer's packages (pip refuses a package named in two
    requirement files, and a function sees all of its layers merged in /opt anyway)."""
    from lambda_ml_layers.local.training import merged_layer_requirements

    target = Path(session.create_tmp()) / "layers-merged.txt"
    target.write_text(_engine(session, merged_layer_requirements, ROOT))  # type: ignore[arg-type]
    return target


@nox.session(python=SERVICE_PYTHON, tags=["ci"])
def service_tests(session: nox.Session) -> None:
    """Handler tests on the layers' exact packages, against a local moto server over HTTP."""
    session.install(
        "--require-hashes",
        "-r",
        str(_merged_layer_requirements(session)),
        "-r",
        "requirements/service-tests.txt",
    )
    # tests/services/template needs the SAM translator: it runs in template_lint.
    session.run("python", "-m", "pytest", "tests/services", "--ignore=tests/services/template", *session.posargs)


@nox.session(python="3.11", tags=["ci"])
def template_lint(session: nox.Session) -> None:
    """cfn-lint and `sam validate --lint` on infra/template.yaml, offline (no AWS account)."""
    # aws-sam-cli pins clash with the tooling's, so it lives in this session's own venv.
    # --no-deps: the lock is the complete set. Without it pip treats aws-sam-cli's
    # boto3-stubs[...] requirement (extras, stripped in the lock) as unpinned and refuses it.
    session.install("--require-hashes", "--no-deps", "-r", "requirements/sam.txt")
    # sam validate needs a region and credentials to exist, never to be valid: it
    # transforms the template locally.
    env = {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "SAM_CLI_TELEMETRY": "0",
    }
    session.run("cfn-lint", "infra/template.yaml")  # the one sam validate --lint uses too
    # Both forms: --lint alone runs cfn-lint's own transform, which accepted an
    # AutoPublishCodeSha256 that SAM's real transform (plain `sam validate`) rejects.
    session.run("sam", "validate", "--template-file", "infra/template.yaml", env=env)
    session.run("sam", "validate", "--lint", "--template-file", "infra/template.yaml", env=env)
    session.run("python", "-m", "pytest", "tests/services/template", *session.posargs, env=env)
