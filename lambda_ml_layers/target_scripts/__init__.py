"""Scripts the engine runs in the *target* interpreter (python3.12/3.13), by path, with `-I`.

They import only the standard library (and the layer under test), never the engine: the
target interpreter has none of the tooling's packages. `-I` keeps this folder off sys.path.
"""

from __future__ import annotations

import json
from pathlib import Path

FOLDER = Path(__file__).resolve().parent


def script(name: str) -> str:
    """The path of target_scripts/<name>.py, for `python -I <path> ...`."""
    return str(FOLDER / f"{name}.py")


def traced(record_dir: Path, root: Path, first_paths: list[str] | None = None) -> list[str]:
    """Arguments that run the script after them under trace_loads.py: put them between the
    interpreter's flags and the script. At exit it writes record_dir/trace-<pid>.json, listing
    what the process loaded from under root; first_paths go first on sys.path."""
    return [script("trace_loads"), str(record_dir), str(root), json.dumps(first_paths or [])]
