"""The size report's picture as a person sees it: rendered by a real headless Chromium (Debian's),
its DOM read after rendering and its screenshot's pixels checked.

Chromium is installed by scripts/bootstrap.py (as root, with apt). Where it is missing the test
skips with the reason, except in CI (`CI` set), where a missing browser is a failure.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import pytest

from lambda_ml_layers.core.paths import BuildPaths
from lambda_ml_layers.size_report.command import SizeReportRequest, size_report
from lambda_ml_layers.size_report.treemap import COLOURS
from tests.unit.test_size_report import BASE, layer

# Flags that keep a headless Chromium from reaching the network or the user's profile.
QUIET = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WINDOW = (1000, 1100)


def chromium() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    fix = "run `python3 scripts/bootstrap.py` as root (it installs Debian's chromium), or `apt-get install chromium`"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but chromium is not installed, so the size report's picture is untested. Fix: {fix}.")
    pytest.skip(f"chromium is not installed; {fix} to run this test")


def run_chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [chromium(), *QUIET, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "HOME": str(profile)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def png_pixels(path: Path) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Width, height and RGB pixels of an 8-bit RGB or RGBA PNG (the standard library has no PNG reader)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, idat = 8, b""
    width = height = channels = 0
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour_type = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour_type in (2, 6), (depth, colour_type)
            channels = 3 if colour_type == 2 else 4
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    raw, stride = zlib.decompress(idat), width * channels
    previous, pixels = bytearray(stride), list[tuple[int, int, int]]()
    for row in range(height):
        start = row * (stride + 1)
        method, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if method == 1:
                line[i] = (line[i] + left) & 0xFF
            elif method == 2:
                line[i] = (line[i] + up) & 0xFF
            elif method == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif method == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        pixels += [(line[i], line[i + 1], line[i + 2]) for i in range(0, stride, channels)]
        previous = line
    return width, height, pixels


def near(counts: Counter[tuple[int, int, int]], colour: str, tolerance: int = 3) -> int:
    """How many pixels have `colour` (#rrggbb), give or take the renderer's rounding."""
    wanted = (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))
    return sum(n for rgb, n in counts.items() if max(abs(a - b) for a, b in zip(rgb, wanted, strict=True)) <= tolerance)


def test_the_picture_renders_in_chromium_with_its_largest_package_and_the_limit(tmp_path: Path) -> None:
    # Today's build: scipy grew (a version change), everything else as in the base.
    current = copy.deepcopy(BASE)
    current["layers"][1] = layer("ml", {"scipy": ("1.16.0", 96_000_000), "scikit-learn": ("1.6.0", 22_000_000)})
    paths = BuildPaths.of(tmp_path)
    paths.default_report.parent.mkdir(parents=True)
    paths.default_report.write_text(json.dumps(current))
    base = tmp_path / "base.json"
    base.write_text(json.dumps(BASE))
    page = size_report(SizeReportRequest(root=tmp_path, base=base)).picture

    dom = run_chromium(tmp_path / "profile-dom", "--dump-dom", page.as_uri()).stdout
    assert "<svg" in dom
    assert "scipy" in dom  # the largest package, labelled in its rectangle
    assert "96.0 MB" in dom
    assert "Lambda limit 262,144,000 bytes" in dom
    assert "OK: layers +8.00 MB vs" in dom

    shot = tmp_path / "shot.png"
    run_chromium(
        tmp_path / "profile-shot", f"--screenshot={shot}", f"--window-size={WINDOW[0]},{WINDOW[1]}", page.as_uri()
    )
    width, height, pixels = png_pixels(shot)
    assert (width, height) == WINDOW
    counts = Counter(pixels)
    # Not blank: the treemap's colours cover much of the page; scipy grew, so its red is there in bulk.
    assert counts[(255, 255, 255)] < 0.8 * len(pixels)
    grew = near(counts, COLOURS["grew"])
    same = near(counts, COLOURS["same"])
    assert grew > 0.10 * len(pixels), counts.most_common(5)
    assert same > 0.05 * len(pixels), counts.most_common(5)
