"""Resource-model fixes for moto 5.2.5: where alarms go, and the metric they watch.

10. AWS::SNS::Subscription
    Stock: no model for the type: skipped with a warning, the stack still succeeds, and the topic
    has no subscriber (ListSubscriptionsByTopic is empty), so where a stage's alarms go cannot be
    rehearsed.
    AWS: Subscribe(TopicArn, Protocol, Endpoint); `Ref` is the subscription ARN; a change of
    Endpoint, Protocol or TopicArn is a replacement; deletion unsubscribes.
    Patch: a new model over moto's SNS backend (moto confirms every subscription at once; AWS
    leaves an e-mail one "PendingConfirmation" until its link is clicked).

11. AWS::Logs::MetricFilter
    Stock: no model for the type: skipped, so DescribeMetricFilters is empty after a deploy.
    AWS: PutMetricFilter on the log group; `Ref` is the filter name (FilterName, else generated);
    an update rewrites the filter in place (a new FilterName or LogGroupName replaces it).
    Patch: a new model over moto's Logs backend. moto stores the filter; it does not turn log
    events into metric data (nor does it evaluate alarms on them).
"""

from __future__ import annotations

from typing import Any

from .resources.model_helpers import remember_policies, retain_replaced, retained_on_delete, unchanged


def apply() -> None:
    _register_subscription()
    _register_metric_filter()
    from moto.cloudformation import parsing

    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()


def _register_subscription() -> None:
    from moto.core.common_models import CloudFormationModel
    from moto.sns.models import sns_backends

    class SubscriptionResource(CloudFormationModel):
        """An `AWS::SNS::Subscription` of a stack, kept in moto's SNS backend."""

        def __init__(self, arn: str) -> None:
            self.arn = arn

        @property
        def physical_resource_id(self) -> str:
            return self.arn

        @staticmethod
        def cloudformation_name_type() -> str:
            return ""

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::SNS::Subscription"

        @classmethod
        def create_from_cloudformation_json(
            cls,
            resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
            **kwargs: Any,
        ) -> SubscriptionResource:
            props = cloudformation_json["Properties"]
            backend = sns_backends[account_id][region_name]
            subscription = backend.subscribe(props["TopicArn"], props["Endpoint"], props["Protocol"])
            resource = cls(subscription.arn)
            remember_policies(resource, cloudformation_json)
            return resource

        @classmethod
        def update_from_cloudformation_json(
            cls,
            original_resource: SubscriptionResource,
            new_resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
        ) -> SubscriptionResource:
            if unchanged(original_resource, cloudformation_json):
                return original_resource
            replacement = cls.create_from_cloudformation_json(
                new_resource_name, cloudformation_json, account_id, region_name
            )
            if not retain_replaced(cloudformation_json) and replacement.arn != original_resource.arn:
                sns_backends[account_id][region_name].unsubscribe(original_resource.arn)
            return replacement

        def delete(self, account_id: str, region_name: str) -> None:
            if not retained_on_delete(self):
                sns_backends[account_id][region_name].unsubscribe(self.arn)

    global _subscription_class
    _subscription_class = SubscriptionResource


def _register_metric_filter() -> None:
    from moto.core.common_models import CloudFormationModel
    from moto.logs.models import logs_backends

    def put(name: str, props: dict[str, Any], account_id: str, region_name: str) -> None:
        transformations: Any = [
            {key[0].lower() + key[1:]: value for key, value in item.items()} for item in props["MetricTransformations"]
        ]
        logs_backends[account_id][region_name].put_metric_filter(
            name, props.get("FilterPattern", ""), props["LogGroupName"], transformations
        )

    class MetricFilterResource(CloudFormationModel):
        """An `AWS::Logs::MetricFilter` of a stack, kept in moto's Logs backend."""

        def __init__(self, name: str, log_group: str) -> None:
            self.name = name
            self.log_group = log_group

        @property
        def physical_resource_id(self) -> str:
            return self.name

        @staticmethod
        def cloudformation_name_type() -> str:
            return "FilterName"

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Logs::MetricFilter"

        @classmethod
        def create_from_cloudformation_json(
            cls,
            resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
            **kwargs: Any,
        ) -> MetricFilterResource:
            props = cloudformation_json["Properties"]
            put(resource_name, props, account_id, region_name)
            resource = cls(resource_name, props["LogGroupName"])
            remember_policies(resource, cloudformation_json)
            return resource

        @classmethod
        def update_from_cloudformation_json(
            cls,
            original_resource: MetricFilterResource,
            new_resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
        ) -> MetricFilterResource:
            props = cloudformation_json["Properties"]
            name = props.get("FilterName", original_resource.name)
            if (name, props["LogGroupName"]) != (original_resource.name, original_resource.log_group):
                replacement = cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)
                if not retain_replaced(cloudformation_json):
                    original_resource.delete(account_id, region_name)
                return replacement
            if not unchanged(original_resource, cloudformation_json):
                logs_backends[account_id][region_name].delete_metric_filter(name, original_resource.log_group)
                put(name, props, account_id, region_name)
                remember_policies(original_resource, cloudformation_json)
            return original_resource

        def delete(self, account_id: str, region_name: str) -> None:
            if not retained_on_delete(self):
                logs_backends[account_id][region_name].delete_metric_filter(self.name, self.log_group)

    global _metric_filter_class
    _metric_filter_class = MetricFilterResource


_subscription_class: type | None = None
_metric_filter_class: type | None = None
