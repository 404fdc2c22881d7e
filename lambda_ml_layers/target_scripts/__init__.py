"""Scripts the engine runs in the *target* interpreter (python3.12/3.13), by path, with `-I`.

They import only the standard library (and the layer under test), never the engine: the
target interpreter has none of the tooling's packages. `-I` keeps this folder off sys.path.
"""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).resolve().parent


def script(name: str) -> str:
    """The path of target_scripts/<name>.py, for `python -I <path> ...`."""
    return str(FOLDER / f"{name}.py")
