"""Run pytest with the layers first on sys.path, as Lambda orders them (target interpreter).

    python -I -B run_pytest.py '["/opt/python/lib/python3.12/site-packages", "/opt/python"]' PYTEST_ARGS...

-I keeps the host's PYTHONPATH, user site and current folder out; the session's venv
(pytest, hypothesis) stays after the layers, so a layer's package always wins.
"""

import json
import os
import sys

if __name__ == "__main__":
    layer_paths = json.loads(sys.argv[1])
    sys.path[:0] = [*layer_paths, os.path.dirname(os.path.abspath(__file__))]
    import pytest

    sys.exit(pytest.main(["-p", "ll_upstream_plugin", *sys.argv[2:]]))
