"""Import modules and read distribution versions, with a layer's folders first on sys.path.

stdin: {"paths": [...], "modules": [...], "versions": {dist: expected}, "clients": [service]}.
Prints one line RESULT{"imports": {module: error or null}, "versions": {dist: found or null},
"clients": {service: error or null}}: each of `clients` must give a boto3 client (a trimmed
botocore must still serve the layer's kept AWS services).
"""

import importlib
import importlib.metadata
import json
import sys


def main() -> None:
    request = json.loads(sys.stdin.read())
    sys.path[:0] = request["paths"]
    result: dict[str, dict[str, str | None]] = {"imports": {}, "versions": {}, "clients": {}}
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
    for service in request.get("clients", []):
        try:
            boto3_session = importlib.import_module("boto3.session")  # the layer's, not a dependency of ours
            session = boto3_session.Session(
                aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
            )
            session.client(service)
            result["clients"][service] = None
        except BaseException as exc:
            result["clients"][service] = f"{type(exc).__name__}: {exc}"
    print("RESULT" + json.dumps(result))


if __name__ == "__main__":
    main()
