"""Patch 8: AWS::CloudWatch::Alarm, a model stock moto lacks."""

from __future__ import annotations

from typing import Any

from .model_helpers import remember_policies, retain_replaced, retained_on_delete, unchanged

# --- 8. AWS::CloudWatch::Alarm ----------------------------------------------------------------
#
# Stock: no model for the type: skipped with a warning, the stack still succeeds, and no alarm
# exists (DescribeAlarms is empty, SetAlarmState fails), so nothing that watches the pipeline's
# alarms after a deploy can be rehearsed.
# AWS: PutMetricAlarm with the properties; `Ref` is the alarm name (AlarmName, else generated
# `<stack>-<logical id>-<random>`), `GetAtt Arn` its ARN; an update rewrites the alarm in place
# (its state is kept), a new AlarmName is a replacement; deletion deletes the alarm.
# Patch: a new CloudFormationModel subclass over moto's CloudWatch backend (single-metric alarms:
# Namespace, MetricName, Dimensions, Statistic or ExtendedStatistic, ...; `Metrics` math alarms
# are stored without their queries).


def register_alarm() -> None:
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.core.common_models import CloudFormationModel

    def put_alarm(name: str, properties: Any, account_id: str, region_name: str) -> Any:
        def number(key: str) -> Any:
            value = properties.get(key)
            return None if value is None else float(value) if key == "Threshold" else int(value)

        return cloudwatch_backends[account_id][region_name].put_metric_alarm(
            name=name,
            namespace=properties.get("Namespace"),
            metric_name=properties.get("MetricName"),
            comparison_operator=properties["ComparisonOperator"],
            evaluation_periods=number("EvaluationPeriods"),
            datapoints_to_alarm=number("DatapointsToAlarm"),
            period=number("Period"),
            threshold=number("Threshold"),
            statistic=properties.get("Statistic"),
            extended_statistic=properties.get("ExtendedStatistic"),
            description=properties.get("AlarmDescription"),
            dimensions=list(properties.get("Dimensions") or []),
            alarm_actions=list(properties.get("AlarmActions") or []),
            ok_actions=list(properties.get("OKActions") or []),
            insufficient_data_actions=list(properties.get("InsufficientDataActions") or []),
            unit=properties.get("Unit"),
            actions_enabled=bool(properties.get("ActionsEnabled", True)),
            treat_missing_data=properties.get("TreatMissingData"),
            evaluate_low_sample_count_percentile=properties.get("EvaluateLowSampleCountPercentile"),
            threshold_metric_id=properties.get("ThresholdMetricId"),
            tags=list(properties.get("Tags") or []),
        )

    class CloudWatchAlarmResource(CloudFormationModel):
        """An `AWS::CloudWatch::Alarm` of a CloudFormation stack, kept in moto's CloudWatch backend."""

        def __init__(self, alarm: Any) -> None:
            self.alarm = alarm

        @property
        def physical_resource_id(self) -> str:
            return str(self.alarm.name)

        @staticmethod
        def cloudformation_name_type() -> str:
            return "AlarmName"

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::CloudWatch::Alarm"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr == "Arn"

        def get_cfn_attribute(self, attribute_name: str) -> Any:
            from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

            if attribute_name == "Arn":
                return self.alarm.alarm_arn
            raise UnformattedGetAttTemplateException()

        @classmethod
        def create_from_cloudformation_json(
            cls,
            resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
            **kwargs: Any,
        ) -> CloudWatchAlarmResource:
            alarm = put_alarm(resource_name, cloudformation_json["Properties"], account_id, region_name)
            resource = cls(alarm)
            remember_policies(resource, cloudformation_json)
            return resource

        @classmethod
        def update_from_cloudformation_json(
            cls,
            original_resource: CloudWatchAlarmResource,
            new_resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
        ) -> CloudWatchAlarmResource:
            properties = cloudformation_json["Properties"]
            old = original_resource.alarm
            # Without an AlarmName moto generates a new random name on every call: keep the first one.
            name = properties.get("AlarmName", old.name)
            if name != old.name:
                replacement = cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)
                if not retain_replaced(cloudformation_json):
                    cloudwatch_backends[account_id][region_name].delete_alarms([old.name])
                return replacement
            if unchanged(original_resource, cloudformation_json):
                return original_resource
            alarm = put_alarm(name, properties, account_id, region_name)
            alarm.update_state(old.state_reason, old.state_reason_data, old.state_value)
            alarm.state_updated_timestamp = old.state_updated_timestamp
            original_resource.alarm = alarm
            remember_policies(original_resource, cloudformation_json)
            return original_resource

        def delete(self, account_id: str, region_name: str) -> None:
            if not retained_on_delete(self):
                cloudwatch_backends[account_id][region_name].delete_alarms([self.alarm.name])

    global _alarm_resource_class
    _alarm_resource_class = CloudWatchAlarmResource


_alarm_resource_class: type | None = None
