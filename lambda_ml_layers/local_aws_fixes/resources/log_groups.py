"""Patch 9: AWS::Logs::LogGroup updates (RetentionInDays)."""

from __future__ import annotations

from typing import Any

from .model_helpers import patch_class, retain_replaced

# --- 9. AWS::Logs::LogGroup updates --------------------------------------------------------------
#
# Stock: LogGroup has no update handler: a changed RetentionInDays is never applied (stock
# ResourceMap.update then even forgets the log group, so a later stack delete leaves it behind).
# AWS: RetentionInDays is updated in place (removing it means "never expire"); a new
# LogGroupName is a replacement.


def patch_log_group() -> None:
    from moto.logs.models import LogGroup, logs_backends

    def update(
        cls: Any,
        /,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        properties = cloudformation_json["Properties"]
        backend = logs_backends[account_id][region_name]
        name = properties.get("LogGroupName", original_resource.name)
        if name != original_resource.name:
            replacement = cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)
            if not retain_replaced(cloudformation_json):
                backend.delete_log_group(original_resource.name)
            return replacement
        retention = properties.get("RetentionInDays")
        if retention is None:
            backend.delete_retention_policy(name)
        else:
            days: Any = int(retention)  # moto's hint says str; the API (and describe) use a number
            backend.put_retention_policy(name, days)
        return original_resource

    patch_class(LogGroup, update_from_cloudformation_json=classmethod(update))
