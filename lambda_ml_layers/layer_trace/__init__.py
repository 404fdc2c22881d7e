"""`inv trace-layers`: what the layers' users actually load, as a reviewed manifest per layer.

    runs.py         the traced runs: smoke tests, the model training, the functions in the sandbox
    attribution.py  which layer each loaded file came from; module, file or library line
    command.py      the command: run, union per layer, summary, write or --check

The manifest's format (layers/<layer>/trace.txt: render, parse, what would change) is
config/trace_manifest.py, since the build's [prune] step reads it. The tracer itself is
target_scripts/trace_loads.py (standard library, in the target interpreter).
"""
