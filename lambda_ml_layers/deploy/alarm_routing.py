"""Where a stage's alarms go: infra/stages.toml's `alarms_to`, subscribed by the template to the
stage's SNS alarm topic (AlarmProtocol / AlarmEndpoint), and refused when prod's go nowhere."""

from __future__ import annotations

from ..errors import DeployGateError
from .stages import STAGES, Stage, alarm_subscription

# Stages whose alarms must reach someone before they may be deployed.
ALARMS_REQUIRED = ("prod",)


def alarm_parameters(stage: Stage) -> dict[str, str]:
    """The template parameters that subscribe `alarms_to` to the alarm topic."""
    protocol, endpoint = alarm_subscription(stage.alarms_to)
    return {"AlarmProtocol": protocol, "AlarmEndpoint": endpoint}


def alarm_destination(stage: Stage) -> str:
    """One line for the deploy's output: where the alarms go."""
    protocol, endpoint = alarm_subscription(stage.alarms_to)
    topic = f"SNS topic lambda-ml-layers-{stage.parameters.get('Stage', stage.name)}-alarms"
    if protocol == "none":
        return f"Alarms go nowhere: {topic} has no subscriber (set alarms_to in {STAGES} [{stage.name}])."
    where = "e-mail to" if protocol == "email" else "HTTPS POST to"
    return f"Alarms go to: {where} {endpoint} (subscribed to {topic})."


def refuse_unrouted_alarms(stage: Stage) -> None:
    """A stage in ALARMS_REQUIRED must name where its alarms go; checked before anything else."""
    if stage.name in ALARMS_REQUIRED and stage.alarms_to is None:
        raise DeployGateError(
            f"Stage {stage.name!r} has nowhere to send its alarms: an alarm would fire and nobody would know. "
            f'Fix: set alarms_to in {STAGES} [{stage.name}] to an e-mail address (alarms_to = "ops@example.com") '
            'or an https:// endpoint (alarms_to = "https://alerts.example.com/hook"). Nothing was uploaded.'
        )
