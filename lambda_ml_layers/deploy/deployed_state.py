"""What a stage runs, read back from AWS: the stack, each function's live alias, the configuration
of the version it points at and (for the checks) the function's reserved concurrency; and a failed
stack operation explained (CloudFormation's failed resource events, oldest first)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from .live_config import IntendedFunction, live_differences, live_values
from .stage_session import StageSession

ALIAS = "live"  # the template's AutoPublishAlias
DEPLOYED = ("CREATE_COMPLETE", "UPDATE_COMPLETE")  # a change that went through


@dataclass(frozen=True)
class FunctionState:
    logical_id: str
    name: str
    version: str  # what the live alias points at
    alias_arn: str
    layers: tuple[str, ...]  # the layer version ARNs of that version, in order
    configuration: dict[str, Any]  # GetFunctionConfiguration of that version
    reserved_concurrency: int | None = None  # the function's (GetFunctionConcurrency), not the version's
    unread: dict[str, str] = field(default_factory=dict)  # a compared field -> why it could not be read back


@dataclass(frozen=True)
class StackState:
    status: str
    resources: dict[str, tuple[str, str]]  # logical id -> (type, physical id)
    functions: dict[str, FunctionState]
    state_machine_definitions: dict[str, str]  # logical id -> definition


def stack_status(session: StageSession) -> str | None:
    """The stack's status, or None when the stack does not exist."""
    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=session.stage.stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return str(stacks[0]["StackStatus"]) if stacks else None


# Why a state read without `concurrency` has no reserved concurrency: check_stack then notes it
# as not compared rather than taking "not asked" for "none reserved".
NOT_ASKED = "not asked for (read_stack(..., concurrency=True) asks)"


def read_stack(session: StageSession, concurrency: bool = False) -> StackState:
    """The stack and each function's live version; with `concurrency`, also each function's
    reserved concurrency (one more call per function, which only check_stack compares)."""
    cloudformation = session.client("cloudformation")
    lambda_client = session.client("lambda")
    status = stack_status(session) or "DOES_NOT_EXIST"
    resources: dict[str, tuple[str, str]] = {}
    if status != "DOES_NOT_EXIST":
        paginator = cloudformation.get_paginator("list_stack_resources")
        for page in paginator.paginate(StackName=session.stage.stack_name):
            for item in page["StackResourceSummaries"]:
                resources[item["LogicalResourceId"]] = (item["ResourceType"], item.get("PhysicalResourceId", ""))
    functions = {}
    for logical_id, (kind, name) in resources.items():
        if kind != "AWS::Lambda::Function":
            continue
        try:
            alias = lambda_client.get_alias(FunctionName=name, Name=ALIAS)
            config = lambda_client.get_function_configuration(FunctionName=name, Qualifier=alias["FunctionVersion"])
        except ClientError:
            functions[logical_id] = FunctionState(logical_id, name, "", "", (), {})
            continue
        unread = {}
        reserved = None
        if not concurrency:
            unread["ReservedConcurrentExecutions"] = NOT_ASKED
        else:
            try:
                reserved = lambda_client.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
            except ClientError as exc:
                unread["ReservedConcurrentExecutions"] = str(exc)
        functions[logical_id] = FunctionState(
            logical_id=logical_id,
            name=name,
            version=str(alias["FunctionVersion"]),
            alias_arn=str(alias["AliasArn"]),
            layers=tuple(layer["Arn"] for layer in config.get("Layers", [])),
            configuration=config,
            reserved_concurrency=None if reserved is None else int(reserved),
            unread=unread,
        )
    definitions = {}
    for logical_id, (kind, arn) in resources.items():
        if kind == "AWS::StepFunctions::StateMachine":
            try:
                described = session.client("stepfunctions").describe_state_machine(stateMachineArn=arn)
                definitions[logical_id] = str(described["definition"])
            except ClientError as exc:
                definitions[logical_id] = f"<cannot be read: {exc}>"
    return StackState(status, resources, functions, definitions)


# A Lambda function ARN in a state machine definition, with its qualifier if any.
_FUNCTION_ARN = re.compile(r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:([A-Za-z0-9_-]+)(:[A-Za-z0-9_$-]+)?")


def state_machine_problems(machine: str, definition: str, functions: Iterable[FunctionState]) -> list[str]:
    """The stack's functions a state machine calls must be called through their live alias: an
    unqualified ARN runs $LATEST and a version ARN a stale version, neither what was verified.
    A function the state machine does not call is no concern of it."""
    live = {f.name: f.alias_arn for f in functions if f.alias_arn}
    called = [(name, qualifier) for name, qualifier in _FUNCTION_ARN.findall(definition) if name in live]
    if not called:
        return [f"state machine {machine} calls none of the stack's functions ({', '.join(sorted(live))})"]
    wrong = sorted({f"{name}{qualifier}" for name, qualifier in called if qualifier != f":{ALIAS}"})
    return [f"state machine {machine} calls {', '.join(wrong)}, not the {ALIAS!r} alias"] if wrong else []


def check_stack(
    state: StackState, intended: dict[str, IntendedFunction], says: str = "template says"
) -> tuple[list[str], list[str]]:
    """Every way the stage differs from what was deployed (empty when it is exactly that), and
    notes on what could not be compared. `says` names the source: "template says", "release 2 says"."""
    problems = []
    notes = []
    if state.status not in DEPLOYED:
        problems.append(f"the stack is {state.status}, not {' or '.join(DEPLOYED)}")
    for function, wanted in intended.items():
        deployed = state.functions.get(function)
        if deployed is None:
            problems.append(f"{function} is not in the stack")
            continue
        if not deployed.version:
            problems.append(f"{function} ({deployed.name}) has no {ALIAS!r} alias")
            continue
        where = f"{function} {ALIAS} (version {deployed.version})"
        live = live_values(deployed.configuration, deployed.reserved_concurrency)
        found, unsure = live_differences(where, wanted, live, deployed.unread, says)
        problems += found
        notes += unsure
    for machine, definition in state.state_machine_definitions.items():
        problems += state_machine_problems(machine, definition, state.functions.values())
    return problems, notes


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
