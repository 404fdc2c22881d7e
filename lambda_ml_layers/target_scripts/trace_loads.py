"""Run a target script under an audit hook that records what the process loads from one folder.

argv: the folder to write the record in, the traced root (the layers' opt/ folder), paths to put
first on sys.path (JSON list; `python script.py` would put the script's folder there, -I does
not), then the script to run and its own arguments.

Recorded, for files under the root only (paths relative to it, symlinks resolved):
- "opened": every file opened through Python (audit event `open`: open(), io.open_code for the
  bytecode the import system reads, os.open), so data files and module files alike;
- "dlopened": ctypes.dlopen names (audit event `ctypes.dlopen`), resolved where they are paths;
- "modules": each module left in sys.modules at exit with its file (or a namespace package's
  folders). The `import` audit event is not used: it carries no file; the open of the module's
  bytecode, or its extension in the process map, says where it came from;
- "mapped": shared objects in /proc/self/maps at exit (extension modules and the libraries
  they link, which the dynamic loader maps without any audit event).

At exit the record is written to <folder>/trace-<pid>.json, so a process that restarts (a new
Lambda container) writes a record of its own. Standard library only.
"""

import atexit
import json
import os
import runpy
import sys


def relative_to(root: str, path: str) -> str | None:
    real = os.path.realpath(path)
    return real[len(root) + 1 :] if real.startswith(root + os.sep) else None


def mapped_files() -> list[str]:
    try:
        with open("/proc/self/maps") as maps:
            return sorted({line.split(None, 5)[5].strip() for line in maps if len(line.split(None, 5)) == 6})
    except OSError:
        return []  # no /proc (not Linux): libraries are then known only from ctypes.dlopen


def module_files() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, module in list(sys.modules.items()):
        try:
            file = getattr(module, "__file__", None)
            places = [file] if isinstance(file, str) else [p for p in getattr(module, "__path__", None) or []]
        except Exception:  # a lazy module object that fails on attribute access loaded nothing here
            continue
        found[name] = [p for p in places if isinstance(p, str)]
    return found


def main() -> None:
    out_dir, root, first_paths, target = (
        sys.argv[1],
        os.path.realpath(sys.argv[2]),
        json.loads(sys.argv[3]),
        sys.argv[4],
    )
    opened: set[str] = set()
    dlopened: set[str] = set()

    def hook(event: str, args: tuple[object, ...]) -> None:
        # Called for every audited action in the process: keep it cheap and never raise.
        if event == "open" and isinstance(args[0], (str, bytes)):
            opened.add(os.path.abspath(os.fsdecode(args[0])))
        elif event == "ctypes.dlopen" and isinstance(args[0], (str, bytes)):
            dlopened.add(os.fsdecode(args[0]))

    def write_record() -> None:
        # Copies first: writing the record opens files too, which the hook would add.
        seen_opened, seen_dlopened = sorted(opened), sorted(dlopened)
        modules = {
            name: [rel for p in places if (rel := relative_to(root, p))] for name, places in module_files().items()
        }
        record = {
            "opened": sorted({rel for p in seen_opened if (rel := relative_to(root, p))}),
            "dlopened": sorted({rel for p in seen_dlopened if (rel := relative_to(root, p))}),
            "mapped": sorted({rel for p in mapped_files() if (rel := relative_to(root, p))}),
            "modules": {name: files for name, files in sorted(modules.items()) if files},
        }
        path = os.path.join(out_dir, f"trace-{os.getpid()}.json")
        with open(path + ".part", "w") as out:
            json.dump(record, out, indent=1)
        os.replace(path + ".part", path)  # a reader never sees half a record

    # Registered first, so it runs last: after the traced script's own exit handlers.
    atexit.register(write_record)
    sys.addaudithook(hook)
    sys.path[:0] = first_paths
    sys.argv = [target, *sys.argv[5:]]
    runpy.run_path(target, run_name="__main__")


if __name__ == "__main__":
    main()
