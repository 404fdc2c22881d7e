"""Import modules and read distribution versions, with a layer's folders first on sys.path.

stdin: {"paths": [...], "modules": [...], "versions": {dist: expected}}. Prints one line
RESULT{"imports": {module: error or null}, "versions": {dist: found or null}}.
"""

import importlib
import importlib.metadata
import json
import sys


def main() -> None:
    request = json.loads(sys.stdin.read())
    sys.path[:0] = request["paths"]
    result: dict[str, dict[str, str | None]] = {"imports": {}, "versions": {}}
    for module in request["modules"]:
        try:
            importlib.import_module(module)
            result["imports"][module] = None
        except BaseException as exc:  # a layer's import may raise anything, SystemExit included
            result["imports"][module] = f"{type(exc).__name__}: {exc}"
    for name in request["versions"]:
        try:
            found: str | None = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found = None
        result["versions"][name] = found
    print("RESULT" + json.dumps(result))


if __name__ == "__main__":
    main()
