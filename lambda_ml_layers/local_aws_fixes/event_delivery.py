"""An upload starts the pipeline, as on AWS: S3 -> EventBridge -> the rule's state machine.

17. A stack's bucket sends its events to EventBridge.
    Stock: `AWS::S3::Bucket`'s NotificationConfiguration is ignored on create and update (only
    encryption and tags are read), so the template's DataBucket, with
    `EventBridgeConfiguration: {EventBridgeEnabled: true}`, sends no event for an upload.
    AWS: every object event of the bucket goes to the account's default event bus.
    Patch: after moto creates or updates the bucket, EventBridgeConfiguration is put on it the way
    PutBucketNotificationConfiguration puts it (moto's S3 then sends "Object Created" events).
    Also: stock ignores `VersioningConfiguration` too, so the template's versioned DataBucket has
    no versions (no VersionId, no `version-id` in the event, which Validate reads as the batch's
    revision). Patch: its Status is put as PutBucketVersioning puts it.
18. A rule's Step Functions target.
    Stock: `Rule.send_to_targets` delivers to log groups, archives, SQS, buses and API
    destinations; a state machine target (SAM's `EventBridgeRule` event on a state machine)
    raises NotImplementedError, which S3's sender swallows: nothing starts, no error is seen.
    AWS: StartExecution with the event as input (or the target's `Input`).
    Patch: a matching event starts an execution of each state machine target, named by a new UUID.
    Also: stock delivers through a DISABLED rule as through an enabled one; AWS does not. Patch: a
    disabled rule delivers nothing.
"""

from __future__ import annotations

import copy
import json
from typing import Any


def _eventbridge_enabled(properties: dict[str, Any]) -> bool:
    configuration = (properties.get("NotificationConfiguration") or {}).get("EventBridgeConfiguration") or {}
    return str(configuration.get("EventBridgeEnabled", "")).lower() == "true"


def _patch_buckets() -> None:
    from moto.s3.models import FakeBucket, s3_backends
    from moto.utilities.utils import get_partition

    create = FakeBucket.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]
    update = FakeBucket.update_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def with_events(bucket: Any, cloudformation_json: dict[str, Any], account_id: str, region_name: str) -> Any:
        properties = cloudformation_json.get("Properties") or {}
        backend = s3_backends[account_id][get_partition(region_name)]
        if _eventbridge_enabled(properties):
            backend.put_bucket_notification_configuration(bucket.name, {"EventBridgeConfiguration": {}})
        status = (properties.get("VersioningConfiguration") or {}).get("Status")
        if status in ("Enabled", "Suspended"):
            backend.put_bucket_versioning(bucket.name, status)
        return bucket

    def create_with_events(
        cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        bucket = create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        return with_events(bucket, cloudformation_json, account_id, region_name)

    def update_with_events(
        cls: Any,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> Any:
        # moto's stack update calls this with keyword arguments only (cloudformation/parsing.py).
        bucket = update(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name)
        return with_events(bucket, cloudformation_json, account_id, region_name)

    FakeBucket.create_from_cloudformation_json = classmethod(create_with_events)  # type: ignore[method-assign,assignment,arg-type]
    FakeBucket.update_from_cloudformation_json = classmethod(update_with_events)  # type: ignore[method-assign,assignment]


def _patch_rules() -> None:
    from moto.events.models import Rule
    from moto.utilities.arns import parse_arn

    from .step_functions import backend

    send_to_targets = Rule.send_to_targets

    def send_with_state_machines(self: Any, original_event: Any, transform_input: bool = True) -> None:
        if self.state == "DISABLED":
            return
        machines = [t for t in self.targets if parse_arn(t["Arn"]).service == "states"]
        others = [t for t in self.targets if t not in machines]
        if others:
            # A shallow copy with only the targets moto delivers to: the rule itself is left as is.
            rule = copy.copy(self)
            rule.targets = others
            send_to_targets(rule, original_event, transform_input)
        if not machines or not self.event_pattern.matches_event(original_event):
            return
        for target in machines:
            arn = parse_arn(target["Arn"])
            execution_input = target.get("Input") or json.dumps(original_event)
            backend(arn.account, arn.region).start_execution(target["Arn"], None, execution_input)

    Rule.send_to_targets = send_with_state_machines  # type: ignore[method-assign]


def apply() -> None:
    _patch_buckets()
    _patch_rules()
