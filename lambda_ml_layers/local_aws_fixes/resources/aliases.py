"""Patch 4: AWS::Lambda::Alias, a model stock moto lacks."""

from __future__ import annotations

import contextlib
from typing import Any

from .model_helpers import lambda_backend, remember_policies, retain_replaced, retained_on_delete, unchanged

# --- 4. AWS::Lambda::Alias ------------------------------------------------------------------
#
# Stock: no model for the type, so the resource is skipped with a warning and the stack still
# succeeds: SAM's AutoPublishAlias `live` alias never exists, and `Ref` to it (the state
# machine's DefinitionSubstitutions, Outputs) is empty.
# AWS: creates the alias (Name, FunctionName, FunctionVersion, Description, RoutingConfig with
# AdditionalVersionWeights [{FunctionVersion, FunctionWeight}]); `Ref` is the alias ARN; an
# update to FunctionVersion, Description or RoutingConfig moves the alias in place; a new Name
# or FunctionName is a replacement; deletion removes the alias.
# Patch: a new CloudFormationModel subclass (created at apply(), so importing this module does
# not register it) over moto's own alias storage, then moto's cached model maps are refreshed.


def register_alias() -> None:
    from moto.awslambda.exceptions import UnknownFunctionException
    from moto.core.common_models import CloudFormationModel

    class LambdaAliasResource(CloudFormationModel):
        """An `AWS::Lambda::Alias` of a CloudFormation stack, kept in moto's Lambda backend."""

        def __init__(self, alias: Any, function_name: str, account_id: str, region_name: str) -> None:
            self.alias = alias
            self.function_name = function_name
            self.account_id = account_id
            self.region_name = region_name

        @property
        def physical_resource_id(self) -> str:
            return str(self.alias.arn)

        @staticmethod
        def cloudformation_name_type() -> str:
            return "Name"

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Lambda::Alias"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return False

        @classmethod
        def create_from_cloudformation_json(
            cls,
            resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
            **kwargs: Any,
        ) -> LambdaAliasResource:
            properties = cloudformation_json["Properties"]
            backend = lambda_backend(account_id, region_name)
            function = backend._lambdas.get_function_by_name_or_arn_forbid_qualifier(properties["FunctionName"])
            alias = backend.create_alias(
                name=properties.get("Name", resource_name),
                function_name=function.function_name,
                function_version=str(properties["FunctionVersion"]),
                description=properties.get("Description", ""),
                routing_config=_routing_config(properties.get("RoutingConfig")),
            )
            resource = cls(alias, function.function_name, account_id, region_name)
            remember_policies(resource, cloudformation_json)
            return resource

        @classmethod
        def update_from_cloudformation_json(
            cls,
            original_resource: LambdaAliasResource,
            new_resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
        ) -> LambdaAliasResource:
            if unchanged(original_resource, cloudformation_json):
                return original_resource
            properties = cloudformation_json["Properties"]
            backend = lambda_backend(account_id, region_name)
            function = backend._lambdas.get_function_by_name_or_arn_forbid_qualifier(properties["FunctionName"])
            name = properties.get("Name", new_resource_name)
            if name != original_resource.alias.name or function.function_name != original_resource.function_name:
                replacement = cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)
                if not retain_replaced(cloudformation_json):
                    original_resource.delete(account_id, region_name, force=True)
                return replacement
            backend.update_alias(
                name=name,
                function_name=function.function_name,
                function_version=str(properties["FunctionVersion"]),
                description=properties.get("Description", ""),
                routing_config=_routing_config(properties.get("RoutingConfig")),
            )
            remember_policies(original_resource, cloudformation_json)
            return original_resource

        def delete(self, account_id: str, region_name: str, force: bool = False) -> None:
            if retained_on_delete(self) and not force:
                return
            with contextlib.suppress(UnknownFunctionException):  # the function, and its aliases, is gone already
                lambda_backend(account_id, region_name).delete_alias(self.alias.name, self.function_name)

    global _alias_resource_class
    _alias_resource_class = LambdaAliasResource


_alias_resource_class: type | None = None


def _routing_config(routing: dict[str, Any] | None) -> dict[str, Any]:
    """CloudFormation's [{FunctionVersion, FunctionWeight}] as the Lambda API's {version: weight}."""
    weights = (routing or {}).get("AdditionalVersionWeights") or []
    if not weights:
        return {}
    return {
        "AdditionalVersionWeights": {
            str(weight["FunctionVersion"]): float(weight["FunctionWeight"]) for weight in weights
        }
    }
