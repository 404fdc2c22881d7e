"""Start AWS's Runtime Interface Client (awslambdaric) as Lambda's Python images do.

argv: the handler ("module.function"), sys.path (JSON list: task, the layers' folders, then the
runtime client's folder, Lambda's order), the file descriptor to write the start time on.
The environment carries AWS_LAMBDA_RUNTIME_API. Before awslambdaric imports the handler, the
wall-clock time goes out on the descriptor, so the sandbox can tell the handler's import apart
from the interpreter's start.
"""

import importlib
import json
import os
import sys
import time


def main() -> None:
    handler, paths, started_fd = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    sys.path[:0] = paths
    client = importlib.import_module("awslambdaric.__main__")

    with os.fdopen(started_fd, "w") as started:
        started.write(repr(time.time()))
    client.main([sys.argv[0], handler])


if __name__ == "__main__":
    main()
