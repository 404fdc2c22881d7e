"""Failures a user can act on. Each carries its exit code; only entry points catch them."""

from __future__ import annotations


class LayerToolError(Exception):
    """A failure with a message that names the culprit and the fix; never shown as a traceback."""

    exit_code = 1


class ConfigError(LayerToolError):
    exit_code = 2


class LockError(LayerToolError):
    exit_code = 3


class InstallError(LayerToolError):
    exit_code = 4


class InterpreterMissing(LayerToolError):
    exit_code = 5


class VerifyError(LayerToolError):
    exit_code = 6


class SizeGateError(LayerToolError):
    exit_code = 7


class LocalAWSError(LayerToolError):
    """The local AWS emulator (moto server) cannot be started or reached, or its fixes do not fit it."""

    exit_code = 8


class BuildInProgress(LayerToolError):
    exit_code = 9


class ModelRejected(LayerToolError):
    """`inv train-model`: the trained model did not beat the baseline, so no artifact was written."""

    exit_code = 10


class SecurityScanError(LayerToolError):
    """The template failed the pre-deploy security scan (checkov), or the scan could not run."""

    exit_code = 11


class DeployGateError(LayerToolError):
    """A check before deploying failed; nothing was uploaded."""

    exit_code = 12


class DeployFailed(LayerToolError):
    """sam deploy or CloudFormation failed; the stage is back on its previous release."""

    exit_code = 13


class VerificationFailed(LayerToolError):
    """The deployed stage did not pass its post-deploy checks."""

    exit_code = 14


class StageBusy(LayerToolError):
    """Another deploy or rollback of the stage is running."""

    exit_code = 15


class ReleaseError(LayerToolError):
    """The release history cannot give what was asked (unknown release, nothing to roll back to)."""

    exit_code = 16


class ToolMissing(LayerToolError):
    """An outside tool (sam, checkov) is not installed where the project looks for it."""

    exit_code = 17


class BuildWriteError(LayerToolError):
    """A place the build must write is read-only, full or not writable; nothing good was replaced."""

    exit_code = 20


class LayerTestFailed(LayerToolError):
    """`nox -s layer_tests`: a layer the template deploys is not built, its zip is unreadable, or it
    failed its import, version or smoke checks."""

    exit_code = 22


class TrainingFailed(LayerToolError):
    """`inv train-model`: the data, the output folder or the AWS credentials stopped the trainer."""

    exit_code = 23


class TraceFailed(LayerToolError):
    """`inv trace-layers`: the built layers are missing, a traced run failed, or (--check) a
    committed layers/<layer>/trace.txt is stale or unreadable."""

    exit_code = 24


class PrunedModuleMissing(LayerToolError):
    """A layer's [prune] removed a module that a kept module or a function imports (build-time check)."""

    exit_code = 25


class SizeReportError(LayerToolError):
    """`inv size-report` has no build report to describe, or its base cannot be read."""

    exit_code = 26


class OperationsError(LayerToolError):
    """An ops command (layer-usage, prune-layers, cold-starts) could not read or change the stage."""

    exit_code = 28


class StateMachineError(LayerToolError):
    """The local Step Functions runner cannot run the template's state machine as written (unknown
    state, missing Next, unsupported state type or JSONPath, a substitution naming no function)."""

    exit_code = 29


class FunctionFailed(LayerToolError):
    """`inv invoke`: the function ran and returned an error (its error document and logs are printed)."""

    exit_code = 30


class NotVerified(LayerToolError):
    """Layers built, but their imports could not be checked on this machine (no interpreter of the
    target's arch and runtime, even under qemu): nothing published unless --accept-unverified."""

    exit_code = 31


class BuildInterrupted(LayerToolError):
    exit_code = 130


def collect(problems: list[str], error: type[LayerToolError], heading: str) -> None:
    """Raise once with every problem found, so one run shows them all."""
    if problems:
        body = "\n".join(f"  - {p}" for p in problems)
        raise error(f"{heading}\n{body}")
