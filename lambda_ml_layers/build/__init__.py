"""`inv build-layers`: locks -> install for the target -> strip -> prune -> bytecode -> zip -> verify
-> size gates -> report -> publish (build_layers.py tells the story; each step is one module)."""
