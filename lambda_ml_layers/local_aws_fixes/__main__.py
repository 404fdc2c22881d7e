"""`python -m lambda_ml_layers.local_aws_fixes -H localhost -p PORT`: moto's server, patched.

Applies every fix of this package, then runs moto's own server entry point (`moto.server.main`,
what the `moto_server` script runs) in this same process: the patches replace methods on moto's
classes, so they must live in the process that serves the requests. Takes moto_server's options;
SIGTERM and SIGINT stop it cleanly (exit status 0), as they stop `moto_server`.
"""

from __future__ import annotations

import sys

from ..core.errors import LocalAWSError
from . import apply
from .step_functions import serve_on


def main(argv: list[str] | None = None) -> None:
    try:
        apply()
    except LocalAWSError as error:  # e.g. another moto version: the message names the fix
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(error.exit_code) from None
    options = argv if argv is not None else sys.argv[1:]
    serve_on(options)
    from moto.server import main as moto_server_main

    moto_server_main(options)


if __name__ == "__main__":
    main()
