"""Run a layer's smoke_test.py with only the layers' folders on sys.path.

argv: paths (JSON list), context (JSON, given to the smoke test as its argv[1]), the smoke test's path.
"""

import json
import runpy
import sys


def main() -> None:
    paths, context, smoke_test = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    sys.path[:0] = paths
    sys.argv = [smoke_test, context]
    runpy.run_path(smoke_test, run_name="__main__")


if __name__ == "__main__":
    main()
