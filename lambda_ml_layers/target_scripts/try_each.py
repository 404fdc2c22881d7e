"""`import` each module or `load-library` each shared object, recording each outcome as it goes.

argv: paths (JSON list, put first on sys.path), items (JSON list), action, results file.
Results go to a file, not stdout (some modules print when imported): a TRY line before each
item and a DONE line after, so the caller knows which item crashed or hung the interpreter.
"""

import ctypes
import importlib
import json
import sys
from collections.abc import Callable

ACTIONS: dict[str, Callable[[str], object]] = {"import": importlib.import_module, "load-library": ctypes.CDLL}


def main() -> None:
    paths, items, action, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
    sys.path[:0] = paths
    act = ACTIONS[action]
    with open(out, "a") as results:
        for item in items:
            results.write(json.dumps(["TRY", item]) + "\n")
            results.flush()
            try:
                act(item)
                error = None
            except BaseException as exc:  # the item's own failure, whatever it is, is the answer
                error = f"{type(exc).__name__}: {exc}"[:300]
            results.write(json.dumps(["DONE", item, error]) + "\n")
            results.flush()


if __name__ == "__main__":
    main()
