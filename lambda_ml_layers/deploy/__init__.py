"""`inv deploy`, `inv rollback`, `inv releases`: one stage at a time, always ending on a release that worked.

gates (build, template lint, security scan, credentials)  -> derive the deploy template
(function packages, layers already published pinned to their ARNs, LayersSha256 parameters)
-> sam deploy -> verify (stack, live aliases' layers, state machine, smoke run)
-> record the release                         on failure: back to the last recorded release
"""
