"""Local AWS that behaves like AWS where the project relies on it: fixes to moto's server.

Stock moto (server mode) is the project's offline AWS (DESIGN.md section 3), but `sam deploy`
of `infra/template.yaml` against it deploys an empty stack, drops layers, never rolls back and
mis-reports changes. This package closes those gaps by replacing methods on moto's classes in
the server's own process, before it serves (`python -m lambda_ml_layers.local_aws_fixes`, what
`local/moto_server.py`'s `moto_server()` starts by default). It is pinned to one moto version: each patch was
written against that version's source, so `apply()` refuses any other.

Gaps closed, CloudFormation level (`cloudformation/`, one module per concern):

1. SAM transform. Stock moto stores `Transform: AWS::Serverless-2016-10-31` templates untouched
   and creates no resources from them (an empty stack that reports success). Now the real SAM
   translator runs on create_stack, create_change_set and update_stack with the resolved
   parameter values; a translation error fails the change set (FAILED, StatusReason
   "Transform AWS::Serverless-2016-10-31 failed with: ...") or the call (ValidationError), as
   on AWS; GetTemplate returns the original template (TemplateStage Processed: the translation).
2. Change-set execution rebuilds the stack's outputs, exports, parameters and description
   (stock moto only stores the new template, so Outputs stay empty after `sam deploy`).
3. Parameter changes. A change set is "no changes" only when the (processed) template and the
   RESOLVED parameter values (defaults and UsePreviousValue included) are both unchanged;
   otherwise it is created, lists the resources that use a changed parameter and is applied.
   A truly identical deploy gets AWS's FAILED change set, "The submitted information didn't
   contain changes. ..." (sam deploy: "No changes to deploy"); update_stack gets "No updates are
   to be performed.".
4. Rollback. A resource failing during execute_change_set, update_stack or create_stack gives
   a CREATE_FAILED / UPDATE_FAILED resource event with the failure as ResourceStatusReason, then
   UPDATE_ROLLBACK_IN_PROGRESS ("The following resource(s) failed to update: [Id]."), the
   previous template and parameters re-applied, UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS,
   UPDATE_ROLLBACK_COMPLETE, with the old template, parameters and outputs kept; the change set
   ends EXECUTE_FAILED. A failed create deletes what it made and ends ROLLBACK_COMPLETE. The API
   call itself succeeds, as on AWS (where execution is asynchronous). Resources are created and
   updated in dependency order (Ref, GetAtt, Sub, DependsOn: a function before the version that
   publishes it) and removed ones deleted only in the cleanup phase, keeping DeletionPolicy
   Retain ones, as CloudFormation does, so a rollback finds the old resources still there.
5. No stale comparisons: the stack's template, processed template and resolved parameters are
   the ones last applied (or restored by a rollback), so redeploying an earlier release is a
   change, and redeploying the current one is not.
   Also: a CREATE change set for a stack left in REVIEW_IN_PROGRESS reuses it (stock moto made a
   second stack of the same name), and for any other existing stack is AlreadyExistsException;
   a stack that is not in an updatable state refuses UPDATE change sets and UpdateStack ("is in
   ROLLBACK_COMPLETE state and can not be updated."); a stack whose create failed keeps its
   template (GetTemplateSummary answered HTTP 500) and lists no resources (moto's lazy resource
   map made them again when listed); resource listings leave out types moto does not model
   (they were entries without LogicalResourceId).
6. Parameter constraints: AllowedValues, AllowedPattern, Min/MaxLength, Min/MaxValue and missing
   values are ValidationErrors of CreateChangeSet / CreateStack / UpdateStack, with AWS's
   messages (stock moto accepted anything, so a deploy AWS refuses passed locally).

Gaps closed, resource models (`resources/`, one module per resource family; its docstring says more):
`AWS::Lambda::LayerVersion` (`Ref` is the version ARN, LayerName honoured, update and delete
handlers), a function's `Layers` (checked like Lambda checks them), `AWS::Lambda::Version`
(`Ref` and `GetAtt Version`, published from the updated function), `AWS::Lambda::Alias`,
`AWS::StepFunctions::StateMachine` DefinitionSubstitutions, Lambda's unzipped size limit,
`AWS::CloudWatch::Alarm`, `AWS::Logs::LogGroup` updates, and DeletionPolicy /
UpdateReplacePolicy Retain on the resources it patches. `alarm_delivery.py`: `AWS::SNS::Subscription`
(where a stage's alarms go) and `AWS::Logs::MetricFilter` (the init-duration metric).

Deployed code can be downloaded (`code_locations.py`): GetFunction's Code.Location and
GetLayerVersion's Content.Location are URLs on this server that return the zip (stock moto
answers an unreachable amazonaws.com host and `s3://`).

State machines run (`step_functions.py`, patches 12-15): moto's own ASL interpreter is on, a
stack's state machine is where StartExecution looks, Retry waits are scaled down
(`$LOCAL_AWS_WAIT_SCALE`), and the interpreter calls Lambda on this server's port. Invoke runs
the deployed code and layers in the project's sandbox (`lambda_sandboxes.py`, patch 16), so a
Lambda task, or any invoke, runs what was deployed. An upload starts the pipeline as on AWS
(`event_delivery.py`, patches 17-18): a stack's bucket sends its events to EventBridge, and a
rule's state machine target starts an execution.

DynamoDB queries read only their partition (`dynamodb_queries.py`): stock moto scans and sorts
the whole table for every Query, so a query's time grew with the table (1.6 s at 250,000 items).

Still different from AWS: everything is synchronous (a deploy is complete, or rolled back, when
ExecuteChangeSet returns); `DisableRollback` is ignored (a failure always rolls back); change
sets list Add/Modify/Remove without Replacement or Details; per-resource events are written
only for failures; a resource is updated when its definition or a parameter it uses changed, not
when only a resource it refers to was replaced; a modified resource whose type moto cannot update
keeps its old properties; only the SAM transform runs (AWS::Include and other macros do not);
custom resources are not waited for.
"""

from __future__ import annotations

import importlib

from ..core.errors import LocalAWSError

MOTO_VERSION = "5.2.5"

_applied = False


def installed_moto_version() -> str:
    from importlib.metadata import version

    return version("moto")


def apply() -> None:
    """Patch moto's classes in this process (idempotent). Call before the server starts."""
    global _applied
    if _applied:
        return
    found = installed_moto_version()
    if found != MOTO_VERSION:
        raise LocalAWSError(
            f"lambda_ml_layers.local_aws_fixes is written against moto {MOTO_VERSION}, but moto {found} "
            "is installed: its patches replace moto internals and could silently misbehave on another "
            f"version. Fix: install moto[server]=={MOTO_VERSION} (requirements/dev.txt), or port the "
            "patches and their tests (tests/integration/test_local_aws_fixes.py) and bump MOTO_VERSION."
        )
    from .cloudformation import apply as apply_cloudformation

    apply_cloudformation()
    try:
        resources = importlib.import_module(f"{__name__}.resources")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.resources":
            raise
    else:
        resources.apply()
    from .alarm_delivery import apply as apply_alarm_delivery

    apply_alarm_delivery()
    from .code_locations import apply as apply_code_locations

    apply_code_locations()
    from .dynamodb_queries import apply as apply_dynamodb_queries

    apply_dynamodb_queries()
    from .step_functions import apply as apply_step_functions

    apply_step_functions()
    from .lambda_sandboxes import apply as apply_lambda_sandboxes

    apply_lambda_sandboxes()
    from .event_delivery import apply as apply_event_delivery

    apply_event_delivery()
    _applied = True
