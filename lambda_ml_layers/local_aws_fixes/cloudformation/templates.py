"""Templates and parameters as CloudFormation reads them, and the SAM transform as AWS runs it."""

from __future__ import annotations

import copy
import re
from typing import Any

from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import Stack

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"


class TransformFailed(Exception):
    """The SAM translator refused the template; the message is what AWS reports."""


def parse(body: str | dict[str, Any]) -> dict[str, Any]:
    """A fresh dict of a template (moto mutates the dicts it deploys from, so diffs never use those)."""
    if isinstance(body, dict):
        return copy.deepcopy(body)
    try:
        parsed = Stack.parse_template(body)
    except Exception as exc:
        raise ValidationError(message=f"Template format error: {exc}") from exc
    if not isinstance(parsed, dict):
        raise ValidationError(message="Template format error: the template is not a JSON or YAML object")
    return parsed


def has_sam_transform(template: dict[str, Any]) -> bool:
    transform = template.get("Transform")
    return SAM_TRANSFORM in (transform if isinstance(transform, list) else [transform])


def as_text(value: Any) -> str:
    """A parameter value as the API shows it (moto keeps lists and numbers after resolving)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(as_text(item) for item in value)
    return str(value)


def resolve_parameters(template: dict[str, Any], given: dict[str, Any]) -> dict[str, str]:
    """Every declared parameter's value (given, else its Default) as text; a declared parameter
    with neither is AWS's ValidationError, raised before anything changes."""
    resolved: dict[str, str] = {}
    missing = []
    for name, slot in (template.get("Parameters") or {}).items():
        value = given.get(name, slot.get("Default") if isinstance(slot, dict) else None)
        if value is None:
            missing.append(name)
        else:
            resolved[name] = as_text(value)
    if missing:
        raise ValidationError(message=f"Parameters: [{', '.join(missing)}] must have values")
    for name, value in resolved.items():
        check_parameter(name, template["Parameters"][name], value)
    return resolved


def check_parameter(name: str, slot: dict[str, Any], value: str) -> None:
    """A parameter's constraints, checked as AWS does before anything changes (stock moto
    accepts any value, so a deploy AWS would refuse passes locally)."""
    values = (
        value.split(",") if str(slot.get("Type", "String")).startswith(("List<", "CommaDelimitedList")) else [value]
    )
    for item in values:
        problem = None
        if "AllowedValues" in slot and item not in [as_text(allowed) for allowed in slot["AllowedValues"]]:
            problem = "must be one of AllowedValues"
        elif "AllowedPattern" in slot and re.fullmatch(str(slot["AllowedPattern"]), item) is None:
            problem = f"must match pattern {slot['AllowedPattern']}"
        elif "MinLength" in slot and len(item) < int(slot["MinLength"]):
            problem = f"must contain at least {slot['MinLength']} characters"
        elif "MaxLength" in slot and len(item) > int(slot["MaxLength"]):
            problem = f"must contain at most {slot['MaxLength']} characters"
        elif slot.get("Type") in ("Number", "List<Number>"):
            try:
                number = float(item)
            except ValueError:
                problem = "must be a number"
            else:
                if "MinValue" in slot and number < float(slot["MinValue"]):
                    problem = f"must be a number not less than {slot['MinValue']}"
                elif "MaxValue" in slot and number > float(slot["MaxValue"]):
                    problem = f"must be a number not greater than {slot['MaxValue']}"
        if problem:
            raise ValidationError(message=f"Parameter '{name}' {problem}")


class _AwsManagedPolicyArns(dict[str, str]):
    """The translator's last resort for a managed policy name its bundled map lacks (it asks
    IAM otherwise; moto lists no AWS managed policies by default): the AWS managed policy ARN."""

    def get(self, name: str, default: Any = None) -> str:
        return f"arn:aws:iam::aws:policy/{name}"


def sam_translate(template: dict[str, Any], parameters: dict[str, str], account_id: str, region: str) -> dict[str, Any]:
    """The real SAM translator's output for `template` (what CloudFormation's transform gives)."""
    try:
        import boto3  # type: ignore[import-untyped]
        from samtranslator.model.exceptions import InvalidDocumentException  # type: ignore[import-untyped]
        from samtranslator.parser.parser import Parser  # type: ignore[import-untyped]
        from samtranslator.translator.translator import Translator  # type: ignore[import-untyped]
        from samtranslator.utils.py27hash_fix import (  # type: ignore[import-untyped]
            to_py27_compatible_template,
            undo_mark_unicode_str_in_template,
        )
    except ImportError as exc:
        raise TransformFailed(
            f"the SAM translator is not installed in the moto server's python ({exc}). Fix: install "
            "aws-sam-translator (requirements/dev.txt) into the interpreter that runs the server"
        ) from exc
    values = {**parameters, "AWS::Region": region, "AWS::AccountId": account_id, "AWS::Partition": "aws"}
    fragment = copy.deepcopy(template)
    try:
        to_py27_compatible_template(fragment, values)
        translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
        translated = translator.translate(
            fragment, parameter_values=values, get_managed_policy_map=_AwsManagedPolicyArns
        )
        result: dict[str, Any] = undo_mark_unicode_str_in_template(translated)
    except InvalidDocumentException as exc:
        # AWS: "Invalid Serverless Application Specification document. Number of errors found: 1.
        # Resource with id [X] is invalid. ..."
        raise TransformFailed(" ".join([exc.message, *(str(cause.message) for cause in exc.causes)])) from exc
    except Exception as exc:  # the translator's own bugs: still a failed transform, not an HTTP 500
        raise TransformFailed(f"{type(exc).__name__}: {exc}") from exc
    return result
