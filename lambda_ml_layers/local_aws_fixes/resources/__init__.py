"""Resource-model fixes for moto 5.2.5: what CloudFormation builds must look like what AWS builds.

`apply()` changes moto's model classes in place (in this process, before the server starts);
it is idempotent. The CloudFormation engine itself (SAM transform, change sets, rollback) is
fixed in `cloudformation/`; this package only fixes what a single resource does when the
stack creates, updates or deletes it, one module per resource family (`model_helpers.py`: what
they share). Each patch says what stock moto 5.2.5 does, what AWS does, and what the patch does
(DESIGN.md section 3).

Conventions shared by every patched resource type:

- Policies. Every create/update remembers the resource's `DeletionPolicy` and
  `UpdateReplacePolicy` (`remember_policies`). Stock moto honours `DeletionPolicy: Retain`
  only when the whole stack is deleted; when an update removes a resource from the template
  (`ResourceMap.update`, "Remove") it deletes it anyway. AWS keeps it in both cases, and keeps
  a replaced resource whose `UpdateReplacePolicy` is Retain. The patched `delete` methods check
  the remembered policy.
- No-op updates. moto calls a type's update handler whenever the template text of a resource
  changed, even if its resolved properties did not (a changed DeletionPolicy, say). AWS then
  changes nothing: each patched handler compares the resolved properties with the ones it
  last applied (`_cfn_properties`) and only refreshes the policies.
- Errors are moto's own `JsonRESTError` subclasses with AWS's code and message, raised out of
  the handler, so the stack operation fails and the CloudFormation fixes can roll it back.

Patches (numbered as in the code and in tests/integration/test_local_aws_resources.py):
1. AWS::Lambda::LayerVersion: `Ref` is the version ARN, LayerName, S3 content with AWS's
   CodeSha256/CodeSize, CompatibleArchitectures, update = replacement, delete unless Retain.
2. AWS::Lambda::Function: every property on create and update (Layers above all), layer checks
   with AWS's errors (also for the Lambda API), code updates from S3, FunctionName replacement.
3. AWS::Lambda::Version: published from the updated function, `Ref` = version ARN, `GetAtt
   Version`, AWS's "A version for this Lambda function exists" when nothing changed, Retain.
4. AWS::Lambda::Alias: a new model (create, move, RoutingConfig, replace, delete).
5. AWS::StepFunctions::StateMachine: DefinitionSubstitutions, Definition and
   DefinitionS3Location, StateMachineType, `GetAtt Arn`, updates and replacement.
6. (the template's other types work in stock moto, or are harmlessly skipped: see below)
7. Lambda's 262,144,000-byte unzipped limit, for layers and a function with its layers.
8. AWS::CloudWatch::Alarm: a new model (create, update keeping state, replace, delete).
9. AWS::Logs::LogGroup: RetentionInDays updates.

Still different from AWS:
- A replaced resource (same logical id, a property that forces replacement) is deleted at once,
  not in the cleanup phase after the whole update succeeded; a rollback then creates it again
  (a replaced layer version comes back with a new version number). SAM gives changed layers and
  versions new logical ids instead, so infra/template.yaml does not meet this.
- Publishing a version from the updated function relies on moto's ResourceMap internals
  (`_parsed_resources`, `_resource_json_map`), pinned with the moto version.
- A version created by a deploy that is then rolled back is retained (DeletionPolicy Retain), so
  retrying the same deploy fails with "A version for this Lambda function exists ( N )": that is
  AWS's rule as documented for Retain and PublishVersion, not verified against an account.
- Deleting a version an alias points to is allowed (AWS: ResourceConflictException); a layer's
  CompatibleRuntimes/Architectures are not enforced (nor are they on AWS); layer permissions and
  other accounts' layers are not modelled; metric-math (`Metrics`) and composite alarms are
  stored without their queries or rule; tags of log groups are not updated; CloudFormation's
  aws:cloudformation:* tags are not added.
- Types of the template moto still skips, harmlessly (nothing reads them back):
  AWS::S3::BucketPolicy. Elsewhere: AWS::SNS::Subscription, AWS::CodeDeploy::*,
  AWS::Logs::MetricFilter, among others.
"""

from __future__ import annotations

from importlib import metadata

from ...core.errors import LocalAWSError
from .alarms import register_alarm
from .aliases import register_alias
from .function_versions import patch_version
from .functions import patch_function
from .layer_versions import patch_layer_version
from .log_groups import patch_log_group
from .size_limit import patch_unzipped_size_limit
from .state_machines import patch_state_machine

MOTO_VERSION = "5.2.5"

_applied = False


def apply() -> None:
    """Patch moto's resource models in this process (idempotent). Call before the server starts."""
    global _applied
    if _applied:
        return
    found = metadata.version("moto")
    if found != MOTO_VERSION:
        raise LocalAWSError(
            f"lambda_ml_layers.local_aws_fixes.resources is written against moto {MOTO_VERSION}, found {found}. "
            f"Fix: install moto=={MOTO_VERSION} (requirements/dev.txt), or re-check each patch against the new "
            "moto source and its tests/integration/test_local_aws_resources.py before changing the pin."
        )
    patch_layer_version()
    patch_function()
    patch_version()
    register_alias()
    patch_state_machine()
    patch_unzipped_size_limit()
    register_alarm()
    patch_log_group()
    _refresh_model_maps()
    _applied = True


def _refresh_model_maps() -> None:
    """`get_model_list`, `get_model_map` and `get_name_type_map` are lru_cached: forget them so the
    new alias model and LayerVersion's LayerName are seen even if a stack was parsed already."""
    from moto.cloudformation import parsing

    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
