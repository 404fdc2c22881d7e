"""What a deploy applies to a stack (template, SAM translation, parameters), and what a stack runs now."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import CloudFormationBackend, Stack

from .templates import as_text, has_sam_transform, parse, resolve_parameters, sam_translate

# Attributes this package keeps on moto's objects (update_order.py has the other two).
PROCESSED = "lml_processed_template"  # Stack/ChangeSet: the SAM translation (JSON), or None
RESOLVED = "lml_resolved_parameters"  # Stack/ChangeSet: every parameter's value, as text


@dataclass
class StackRelease:
    """What a deploy applies: the template as submitted, its SAM translation (None for plain
    CloudFormation) and its parameters, as given and as resolved."""

    template: str | dict[str, Any]
    processed: str | None
    given: dict[str, str]
    resolved: dict[str, str] = field(default_factory=dict)

    def template_dict(self) -> dict[str, Any]:
        """The CloudFormation template that is deployed (the translation of a SAM template)."""
        return parse(self.processed if self.processed is not None else self.template)

    @classmethod
    def prepare(cls, backend: CloudFormationBackend, template: str, given: dict[str, Any]) -> StackRelease:
        """Resolve parameters and run the SAM transform; ValidationError for a template AWS would
        refuse at once, TransformFailed when the SAM translator refuses it."""
        original = parse(template)
        if not isinstance(original.get("Resources"), dict) or not original["Resources"]:
            raise ValidationError(message="Template format error: At least one Resources member must be defined.")
        given_text = {key: as_text(value) for key, value in given.items()}
        resolved = resolve_parameters(original, given_text)
        release = cls(template, None, given_text, resolved)
        if has_sam_transform(original):
            processed = sam_translate(original, resolved, backend.account_id, backend.region_name)
            release.processed = json.dumps(processed)
        return release

    @classmethod
    def of(cls, stack: Stack) -> StackRelease:
        """The release a stack runs now (what a rollback returns to)."""
        return cls(
            stack.template,
            getattr(stack, PROCESSED, None),
            dict(stack.parameters or {}),
            dict(getattr(stack, RESOLVED, {})),
        )

    def same_as(self, stack: Stack) -> bool:
        """No change: the deployed template and the resolved parameter values are both equal."""
        current = StackRelease.of(stack)
        return current.template_dict() == self.template_dict() and current.resolved == self.resolved
