"""What a layer declares in `[upstream_tests]` of its layer.toml, and the pytest arguments it makes (pure)."""

from __future__ import annotations

from ...config.upstream_tests import Suite

PER_TEST_TIMEOUT_S = 300  # one hung test fails alone instead of eating the suite's budget


def suite_paths(suite: Suite, fast: bool) -> tuple[str, ...]:
    return suite.fast if fast else suite.paths


def pytest_args(suite: Suite, site: str, fast: bool, workers: int = 1) -> list[str]:
    """Arguments for one run of `suite` from the tree at `site` (the same for both trees);
    `workers` > 1 spreads the tests over that many pytest-xdist processes."""
    args = ["-q", "-p", "no:cacheprovider", "--rootdir", site, f"--timeout={PER_TEST_TIMEOUT_S}"]
    if workers > 1:
        args += ["-n", str(workers)]
    # A test module that cannot be collected (numpy.f2py's need the meson build tool) is recorded
    # as failing in that tree; without this flag pytest would run nothing at all.
    args.append("--continue-on-collection-errors")
    if suite.markers:
        args += ["-m", suite.markers]
    for node in suite.deselect:
        args += ["--deselect", node]  # pytest compares it with node ids, which are relative to rootdir
    return [*args, *(f"{site}/{path}" for path in suite_paths(suite, fast))]


def expected_reason(node_id: str, expected: dict[str, str]) -> str | None:
    """The declared reason for a node id: an exact entry, or the longest prefix ending at :: or /."""
    best: str | None = None
    for key in expected:
        following = node_id[len(key) : len(key) + 1]  # what comes after the key: a separator, or nothing
        prefix = node_id.startswith(key) and (key.endswith(("/", "::")) or following in ("", "/", ":", "["))
        if prefix and (best is None or len(key) > len(best)):
            best = key
    return expected[best] if best is not None else None
