"""Engine of lambda-ml-layers: builds, checks, deploys and operates the pipeline's Lambda layers.

`tasks.py` and `noxfile.py` only parse arguments and call into it. Its modules live in folders by
phase, each folder importing only the ones below it (docs/architecture.md opens with the tree):

    core/          errors, paths under build/, the one command runner, progress, runtimes
    config/        the project's settings read once into frozen dataclasses: layers, locks, template, stages
    build/         `inv build-layers`: install, strip, prune, bytecode, zip, verify, gates, report, publish
    checks/        what tests built layers: layer_tests, the module map, the libraries' own test suites
    local/         what stands in for AWS here: the Lambda-like sandbox, the moto server, the local pipeline
    deploy/        `inv deploy`, `rollback`, `releases`: gates, sam, verification, release history
    layer_trace/   `inv trace-layers`: what the layers' users load, as reviewed manifests
    ops/           `inv layer-usage`, `prune-layers`, `cold-starts` on a deployed stage
    size_report/   `inv size-report`: today's build against a stage's release
    target_scripts/    scripts run by path in the target interpreter (standard library only)
    local_aws_fixes/   moto patched where it differs from AWS, run inside the moto server's process
"""
