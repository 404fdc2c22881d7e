"""A failed stack operation explained: CloudFormation's failed resource events, oldest first."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from .deployed_state import DEPLOYED
from .stage_session import StageSession


def failure_events(session: StageSession, since: float) -> list[dict[str, str]]:
    """The stack's failed resources since `since` (epoch seconds), oldest first."""
    events = []
    try:
        pages = session.client("cloudformation").get_paginator("describe_stack_events")
        for page in pages.paginate(StackName=session.stage.stack_name):
            for event in page["StackEvents"]:
                if event["Timestamp"].timestamp() < since - 5:
                    break
                if event.get("ResourceStatus", "").endswith("_FAILED"):
                    events.append(
                        {
                            "resource": str(event.get("LogicalResourceId")),
                            "type": str(event.get("ResourceType")),
                            "status": str(event.get("ResourceStatus")),
                            "reason": str(event.get("ResourceStatusReason", "")),
                        }
                    )
    except (ClientError, BotoCoreError):  # the explanation must not hide the failure it explains
        return events
    return list(reversed(events))


def explain_events(events: list[dict[str, str]]) -> str:
    causes = [e for e in events if e["resource"] and "cancelled" not in e["reason"].lower()] or events
    return "\n".join(f"  - {e['resource']} ({e['type']}): {e['status']}: {e['reason']}" for e in causes[:8])


def deployed_ok(returncode: int, status: str | None) -> bool:
    return returncode == 0 and status in DEPLOYED
