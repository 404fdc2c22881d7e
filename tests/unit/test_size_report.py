"""`inv size-report`: the diff rules (what changed and why), the texts, the treemap layout and page,
and the command's edges over real files in a tmp checkout."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from lambda_ml_layers.core.errors import SizeReportError
from lambda_ml_layers.core.paths import BuildPaths
from lambda_ml_layers.core.runtimes import LAMBDA_UNZIPPED_LIMIT
from lambda_ml_layers.size_report.command import SizeReportRequest, size_report
from lambda_ml_layers.size_report.diff import compare, layer_change, package_why, verdict
from lambda_ml_layers.size_report.render import render, to_data
from lambda_ml_layers.size_report.treemap import html_page, squarify


def layer(name: str, packages: dict[str, tuple[str, int]], **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": name,
        "files": 10,
        "unzipped_bytes": sum(size for _, size in packages.values()),
        "zipped_bytes": 1_000,
        "budget_bytes": 150_000_000,
        "sha256": f"sha-{name}-{sorted(packages.items())}",
        "packages": {pkg: version for pkg, (version, _) in packages.items()},
        "package_bytes": {pkg: size for pkg, (_, size) in packages.items()},
        "provided_by_base": {},
        "removed_bytes_by_rule": {"tests": 5_000_000},
    }
    entry.update(extra)
    return entry


def function(name: str, layer_bytes: int, headroom: int = 5_000_000) -> dict[str, Any]:
    return {
        "name": name,
        "code_bytes": 20_000,
        "layer_bytes": layer_bytes,
        "total_bytes": layer_bytes + 20_000,
        "limit_bytes": LAMBDA_UNZIPPED_LIMIT,
        "headroom_bytes": headroom,
        "room_for_code_bytes": LAMBDA_UNZIPPED_LIMIT - layer_bytes,
    }


def report(*layers: dict[str, Any], functions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "runtime": "python3.12",
        "arch": "x86_64",
        "layers": list(layers),
        "functions": functions or [],
        "failures": [],
    }


CORE = layer("core", {"numpy": ("2.2.0", 40_000_000), "pandas": ("2.3.0", 30_000_000), "six": ("1.17.0", 3_000)})
ML = layer("ml", {"scipy": ("1.15.0", 88_000_000), "scikit-learn": ("1.6.0", 22_000_000)})
BASE = report(CORE, ML, functions=[function("Predict", 180_000_000)])


def test_version_change_is_named_with_both_versions() -> None:
    after = layer("ml", {"scipy": ("1.16.0", 90_000_000), "scikit-learn": ("1.6.0", 22_000_000)})
    change = layer_change("ml", ML, after)
    assert [(p.name, p.delta, p.why) for p in change.packages] == [("scipy", 2_000_000, "version 1.15.0 -> 1.16.0")]
    assert change.status == "changed"
    assert change.delta == 2_000_000


def test_added_and_removed_packages_say_so_with_their_versions() -> None:
    after = layer("ml", {"scipy": ("1.15.0", 88_000_000), "joblib": ("1.5.0", 500_000)})
    whys = {p.name: (p.delta, p.why) for p in layer_change("ml", ML, after).packages}
    assert whys == {
        "joblib": (500_000, "package added (1.5.0)"),
        "scikit-learn": (-22_000_000, "package removed (was 1.6.0)"),
    }


def test_a_package_moved_to_a_base_layer_names_that_layer() -> None:
    after = copy.deepcopy(CORE)
    del after["package_bytes"]["six"], after["packages"]["six"]
    after["provided_by_base"] = {"six": "shared-base"}
    assert package_why("six", CORE, after, {}) == "removed: now provided by base layer shared-base"
    assert package_why("six", after, CORE, {}) == "package added (1.17.0): no longer taken from base layer shared-base"


def test_same_version_with_a_strip_rule_change_blames_the_rule() -> None:
    after = copy.deepcopy(CORE)
    after["package_bytes"]["pandas"] -= 1_500_000
    after["unzipped_bytes"] -= 1_500_000
    after["removed_bytes_by_rule"] = {"tests": 6_500_000, "docs-and-examples": 0}
    change = layer_change("core", CORE, after)
    assert change.rules == {"tests": 1_500_000}
    assert [(p.name, p.why) for p in change.packages] == [
        ("pandas", "same version 2.3.0; strip rules changed (tests -1.50 MB in this layer)")
    ]


def test_same_version_and_same_rules_blames_the_build_settings() -> None:
    after = copy.deepcopy(CORE)
    after["package_bytes"]["numpy"] += 900_000
    assert layer_change("core", CORE, after).packages[0].why.startswith("same version 2.2.0; the build changed")


def test_same_zip_is_unchanged_and_lists_no_packages() -> None:
    change = layer_change("core", CORE, copy.deepcopy(CORE))
    assert (change.status, change.delta, change.packages, change.rules) == ("unchanged", 0, [], {})


def test_new_and_gone_layers() -> None:
    new = layer_change("core", None, CORE)
    assert (new.status, new.before, new.rules) == ("added", 0, {})
    assert {p.why for p in new.packages} == {"package added (2.2.0)", "package added (2.3.0)", "package added (1.17.0)"}
    gone = layer_change("core", CORE, None)
    assert (gone.status, gone.after, gone.delta) == ("removed", 0, -CORE["unzipped_bytes"])


def test_functions_room_and_change_against_the_base() -> None:
    current = report(CORE, ML, functions=[function("Predict", 183_000_000), function("New", 10_000_000)])
    diff = compare(current, BASE, "release 4 of stage local")
    rooms = {fn.name: (fn.left, fn.delta) for fn in diff.functions}
    assert rooms == {
        "Predict": (LAMBDA_UNZIPPED_LIMIT - 183_020_000, 3_000_000),
        "New": (LAMBDA_UNZIPPED_LIMIT - 10_020_000, None),
    }


def test_verdicts() -> None:
    ok = verdict(compare(BASE, BASE, "release 1 of stage local"))
    assert ok.startswith("OK: layers +0.00 MB vs release 1 of stage local; tightest function Predict")
    tight = report(CORE, ML, functions=[function("Predict", LAMBDA_UNZIPPED_LIMIT - 1_000_000)])
    assert verdict(compare(tight, BASE, "x")).startswith("WARN: inside the kept headroom (Predict)")
    over = report(CORE, ML, functions=[function("Predict", LAMBDA_UNZIPPED_LIMIT)])
    assert verdict(compare(over, BASE, "x")).startswith("FAIL: over a limit (Predict)")
    fat = report(layer("core", {"numpy": ("2.2.0", 40_000_000)}, budget_bytes=30_000_000))
    assert verdict(compare(fat, None, "nothing")).startswith("FAIL: over a limit (core); no base to compare")


def test_markdown_leads_with_the_verdict_and_escapes_pipes() -> None:
    current = copy.deepcopy(BASE)
    current["layers"][1] = layer("ml", {"scipy": ("1.16|rc", 90_000_000), "scikit-learn": ("1.6.0", 22_000_000)})
    text = render(compare(current, BASE, "release 2 of stage local"), "markdown")
    first = text.splitlines()[0]
    assert first.startswith("### Layer sizes: OK: layers +2.00 MB vs release 2 of stage local")
    assert "| ml | scipy | 88.00 | 90.00 | +2.00 | version 1.15.0 -> 1.16\\|rc |" in text


def test_json_carries_exact_bytes_and_the_verdict() -> None:
    current = copy.deepcopy(BASE)
    current["layers"][0]["package_bytes"]["numpy"] += 123
    data = json.loads(render(compare(current, BASE, "b"), "json"))
    assert data == to_data(compare(current, BASE, "b"))
    numpy = data["layers"][0]["packages"][0]
    assert (numpy["name"], numpy["delta_bytes"]) == ("numpy", 123)
    assert data["verdict"].startswith("OK:")


def test_squarify_tiles_the_box_in_proportion() -> None:
    items = [("a", 600), ("b", 300), ("c", 60), ("d", 40), ("empty", 0)]
    rects = squarify(items, 400, 250)
    assert [r.label for r in rects] == ["a", "b", "c", "d"]
    for rect in rects:
        assert rect.w * rect.h == pytest.approx(rect.value / 1000 * 400 * 250)
        assert rect.x >= -1e-9 and rect.y >= -1e-9
        assert rect.x + rect.w <= 400 + 1e-6 and rect.y + rect.h <= 250 + 1e-6
    for i, one in enumerate(rects):  # no two overlap
        for other in rects[i + 1 :]:
            overlap_w = min(one.x + one.w, other.x + other.w) - max(one.x, other.x)
            overlap_h = min(one.y + one.h, other.y + other.h) - max(one.y, other.y)
            assert overlap_w <= 1e-6 or overlap_h <= 1e-6
    assert squarify([], 400, 250) == []


def test_page_is_self_contained_and_names_every_package() -> None:
    page = html_page(BASE, None, compare(BASE, None, "nothing"))
    for fetch in ("http:", "https:", "src=", "href=", "<script", "@import", "url("):
        assert fetch not in page
    assert "scipy" in page and "88,000,000 bytes" in page
    assert "262,144,000" in page


def write_checkout(root: Path, current: dict[str, Any] | None) -> BuildPaths:
    paths = BuildPaths.of(root)
    if current is not None:
        paths.default_report.parent.mkdir(parents=True)
        paths.default_report.write_text(json.dumps(current))
    return paths


def test_command_against_a_saved_base_writes_the_picture(tmp_path: Path) -> None:
    current = copy.deepcopy(BASE)
    current["layers"][1] = layer("ml", {"scipy": ("1.16.0", 90_000_000), "scikit-learn": ("1.6.0", 22_000_000)})
    paths = write_checkout(tmp_path, current)
    base = tmp_path / "saved.json"
    base.write_text(json.dumps(BASE))
    result = size_report(SizeReportRequest(root=tmp_path, base=base))
    assert "scipy" in result.text and "version 1.15.0 -> 1.16.0" in result.text
    assert result.text.splitlines()[-1].startswith(f"OK: layers +2.00 MB vs {base}")
    assert result.picture == paths.size_report_html
    assert "scipy" in paths.size_report_html.read_text()
    assert not list(paths.build.glob("*.partial"))


def test_command_without_a_base_or_an_earlier_build_says_it_compares_against_nothing(tmp_path: Path) -> None:
    write_checkout(tmp_path, BASE)
    text = size_report(SizeReportRequest(root=tmp_path)).text
    assert "this build against nothing (no --stage or --base given, and no earlier good build of " in text
    assert "no base to compare" in text.splitlines()[-1]


def test_command_without_a_base_compares_with_the_previous_build_and_says_so(tmp_path: Path) -> None:
    current = copy.deepcopy(BASE)
    current["layers"][1] = layer("ml", {"scipy": ("1.16.0", 90_000_000), "scikit-learn": ("1.6.0", 22_000_000)})
    paths = write_checkout(tmp_path, current)
    previous = paths.previous_report("python3.12", "x86_64")
    previous.parent.mkdir(parents=True)
    previous.write_text(json.dumps(BASE))
    text = size_report(SizeReportRequest(root=tmp_path)).text
    label = "the previous build (build/reports/python3.12-x86_64/previous-report.json)"
    assert f"this build against {label}" in text
    assert "version 1.15.0 -> 1.16.0" in text
    assert text.splitlines()[-1].startswith(f"OK: layers +2.00 MB vs {label}")
    previous.write_text("{not json")
    with pytest.raises(SizeReportError, match=r"The previous build's report .* cannot be read as JSON"):
        size_report(SizeReportRequest(root=tmp_path))


@pytest.mark.parametrize(
    ("base_text", "message"),
    [
        (None, "The base report {base} does not exist. Fix: pass the report.json of an earlier build."),
        ("{not json", "The base report {base} cannot be read as JSON"),
        ('{"layers": 3}', "The base report {base} is not a build report (no 'layers' list)."),
        (
            '{"layers": [{"name": "core"}]}',
            "The base report {base} layers[0] (core) lacks unzipped_bytes, package_bytes.",
        ),
        ('{"layers": ["core"]}', "The base report {base} layers[0] is not an object."),
        (
            '{"layers": [], "functions": [{"name": "Predict", "code_bytes": 1}]}',
            "The base report {base} functions[0] (Predict) lacks layer_bytes, total_bytes.",
        ),
        (
            '{"layers": [{"name": "core", "unzipped_bytes": 1, "package_bytes": [1]}]}',
            "The base report {base} layers[0] (core): package_bytes is not an object.",
        ),
    ],
)
def test_a_bad_base_is_exit_26_and_keeps_the_last_picture(tmp_path: Path, base_text: str | None, message: str) -> None:
    paths = write_checkout(tmp_path, BASE)
    paths.size_report_html.write_text("the last good picture")
    base = tmp_path / "saved.json"
    if base_text is not None:
        base.write_text(base_text)
    with pytest.raises(SizeReportError) as raised:
        size_report(SizeReportRequest(root=tmp_path, base=base))
    assert raised.value.exit_code == 26
    assert message.format(base=base) in str(raised.value)
    assert paths.size_report_html.read_text() == "the last good picture"


def test_no_build_report_names_the_build_command(tmp_path: Path) -> None:
    write_checkout(tmp_path, None)
    with pytest.raises(SizeReportError, match=r"build/report.json does not exist. Fix: build the layers first"):
        size_report(SizeReportRequest(root=tmp_path))


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    write_checkout(tmp_path, BASE)
    with pytest.raises(SizeReportError, match="--format must be one of table, json, markdown, not 'html'"):
        size_report(SizeReportRequest(root=tmp_path, fmt="html"))
    with pytest.raises(SizeReportError, match="Give --stage or --base, not both"):
        size_report(SizeReportRequest(root=tmp_path, stage="local", base=tmp_path / "x.json"))
