"""What a layer declares in `[upstream_tests]` of its layer.toml (the checks run it: checks/upstream_tests/)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Suite:
    """One library's selection: paths under the layer's python/ folder (files, folders or node ids)."""

    name: str
    paths: tuple[str, ...]
    markers: str  # a pytest -m expression, e.g. "not slow"
    budget_s: int  # the whole selection, one run (stripped or unstripped); over it, the suite fails
    fast: tuple[str, ...]  # the subset CI runs (nox -t ci); empty: the suite is not in CI
    deselect: tuple[str, ...] = ()  # node ids never run (e.g. a test that needs the network)


@dataclass(frozen=True)
class UpstreamTests:
    suites: tuple[Suite, ...]
    # node id, or a prefix of node ids ("pkg/tests/test_x.py::TestY"): why it is expected to fail stripped
    expected_failures: dict[str, str]
    # arch -> the same, for failures of that arch's zips only ([upstream_tests.arch_expected_failures.arm64]):
    # kept apart so a difference seen on one arch never hides a failure on the other
    arch_expected_failures: dict[str, dict[str, str]] = field(default_factory=dict)

    def expected_on(self, arch: str) -> dict[str, str]:
        """The declared expected failures for `arch`'s zips: the shared ones and that arch's own."""
        return {**self.expected_failures, **self.arch_expected_failures.get(arch, {})}
