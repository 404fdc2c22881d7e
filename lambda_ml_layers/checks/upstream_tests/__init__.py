"""`nox -s upstream_tests`: the libraries' own pytest suites against the built, stripped layers.

selection.py (what each layer declares), overlay.py (test folders laid back from the locked
wheels), pytest_run.py (one suite in the target interpreter), compare.py (stripped against
unstripped, and which strip rule is to blame), report.py, run.py (the whole session).
in_target/ holds the files the target interpreter runs (stdlib and pytest only).
"""
