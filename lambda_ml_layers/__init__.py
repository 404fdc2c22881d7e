"""Engine of lambda-ml-layers: builds, checks and reports the pipeline's Lambda layers.

`tasks.py` and `noxfile.py` only parse arguments and call into these modules; each module
has one job, named by its file (config, locks, pip_runner, strip_rules, ...).
"""
