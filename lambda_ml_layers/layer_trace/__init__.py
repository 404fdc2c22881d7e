"""`inv trace-layers`: what the layers' users actually load, as a reviewed manifest per layer.

    runs.py         the traced runs: smoke tests, the model training, the functions in the sandbox
    attribution.py  which layer each loaded file came from; module, file or library line
    manifest.py     layers/<layer>/trace.txt: render, parse (`read_trace`), what would change
    command.py      the command: run, union per layer, summary, write or --check

The tracer itself is target_scripts/trace_loads.py (standard library, in the target interpreter).
"""

from __future__ import annotations

from .manifest import Trace, read_trace

__all__ = ["Trace", "read_trace"]
