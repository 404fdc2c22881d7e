"""Module pruning: a layer's `[prune]` section removes what its trace and keep list do not cover.

Not to be confused with `inv prune-layers` (ops/), which deletes unused layer *versions* on AWS.
plan.py decides (pure), step.py deletes in the build's staging folder, contract.py checks that
what functions import survived and explains a missing module.
"""
