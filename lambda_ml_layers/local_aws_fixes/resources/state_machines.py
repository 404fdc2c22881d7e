"""Patch 5: AWS::StepFunctions::StateMachine with its definition as AWS deploys it."""

from __future__ import annotations

import json
from typing import Any

from ..step_functions import backend
from .model_helpers import patch_class, remember_policies, retain_replaced, retained_on_delete, s3_object, unchanged

# --- 5. AWS::StepFunctions::StateMachine ----------------------------------------------------
#
# Stock: DefinitionSubstitutions are ignored (the deployed definition keeps `${DataValidationArn}`
# placeholders), `Definition` (an object) and DefinitionS3Location are ignored (empty
# definition), StateMachineType is ignored, `GetAtt Arn` is refused ("Template error: resource
# ... does not support attribute type Arn"), and a removed Retain resource is deleted.
# AWS: the definition is DefinitionString, Definition (as JSON) or the S3 object, with every
# `${key}` of DefinitionSubstitutions replaced by its value; `Ref` and `GetAtt Arn` are the ARN,
# `GetAtt Name` the name; an update changes the definition and role in place; a new name or type
# is a replacement.


def patch_state_machine() -> None:
    from moto.stepfunctions.models import StateMachine
    from moto.stepfunctions.utils import cfn_to_api_tags

    original_get_cfn_attribute = StateMachine.get_cfn_attribute

    def create(
        cls: Any,
        /,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        properties = cloudformation_json["Properties"]
        machines = backend(account_id, region_name)
        state_machine = machines.create_state_machine(
            properties.get("StateMachineName", resource_name),
            _state_machine_definition(properties, account_id, region_name),
            properties.get("RoleArn", ""),
            tags=cfn_to_api_tags(properties.get("Tags", [])),
            sm_type=properties.get("StateMachineType"),
        )
        remember_policies(state_machine, cloudformation_json)
        return state_machine

    def update(
        cls: Any,
        /,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        if unchanged(original_resource, cloudformation_json):
            return original_resource
        properties = cloudformation_json["Properties"]
        machines = backend(account_id, region_name)
        name = properties.get("StateMachineName", original_resource.name)
        if name != original_resource.name or properties.get("StateMachineType", "STANDARD") != original_resource.type:
            replacement = create(cls, name, cloudformation_json, account_id, region_name)
            if not retain_replaced(cloudformation_json):
                machines.delete_state_machine(original_resource.arn)
            return replacement
        state_machine = machines.update_state_machine(
            original_resource.arn,
            definition=_state_machine_definition(properties, account_id, region_name),
            role_arn=properties.get("RoleArn", ""),
        )
        machines.tagger.tag_resource(state_machine.arn, cfn_to_api_tags(properties.get("Tags", [])))
        remember_policies(state_machine, cloudformation_json)
        return state_machine

    def delete(self: Any, account_id: str, region_name: str) -> None:
        if not retained_on_delete(self):
            backend(account_id, region_name).delete_state_machine(self.arn)

    def has_cfn_attr(cls: Any, attr: str) -> bool:
        return attr in ("Arn", "Name", "DefinitionString", "RoleArn", "StateMachineName", "Tags")

    def get_cfn_attribute(self: Any, attribute_name: str) -> Any:
        if attribute_name == "Arn":
            return self.arn
        return original_get_cfn_attribute(self, attribute_name)

    patch_class(
        StateMachine,
        create_from_cloudformation_json=classmethod(create),
        update_from_cloudformation_json=classmethod(update),
        delete=delete,
        has_cfn_attr=classmethod(has_cfn_attr),
        get_cfn_attribute=get_cfn_attribute,
    )


def _state_machine_definition(properties: dict[str, Any], account_id: str, region_name: str) -> str:
    if "DefinitionString" in properties:
        definition = str(properties["DefinitionString"])
    elif "Definition" in properties:
        definition = json.dumps(properties["Definition"], indent=4)
    elif "DefinitionS3Location" in properties:
        location = properties["DefinitionS3Location"]
        key = s3_object(
            account_id,
            region_name,
            {"S3Bucket": location["Bucket"], "S3Key": location["Key"], "S3ObjectVersion": location.get("Version")},
        )
        definition = key.value.decode("utf-8")
    else:
        definition = ""
    for key_name, value in (properties.get("DefinitionSubstitutions") or {}).items():
        text = json.dumps(value) if isinstance(value, bool) else str(value)
        definition = definition.replace("${" + key_name + "}", text)
    return definition
