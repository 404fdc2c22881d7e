"""infra/template.yaml: layer wiring, layer metadata, IAM scope, the state machine, and the
SAM transform itself (run by `nox -s template_lint`, in the SAM venv).

The transform is the real one SAM and CloudFormation run (samtranslator); local CodeUri and
ContentUri paths are swapped for S3 URIs first, as `sam package` would do.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform

from lambda_ml_layers.config.project import base_layers_of, load_project
from lambda_ml_layers.config.stages import load_stage
from lambda_ml_layers.core.paths import BuildPaths

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = ROOT / "infra" / "template.yaml"
CORE, ML, AWS = "CoreDataScienceLayer", "MLLibrariesLayer", "AWSUtilitiesLayer"


def _wiring() -> tuple[dict[str, str], dict[str, list[str]]]:
    """Layer logical id -> its folder under layers/, and function -> its layers, read from the
    template itself (the one source of which function uses which layers), so a layer or function
    added by `inv new-layer` / `inv new-function` is checked like the others."""
    found = yaml_parse(TEMPLATE.read_text())["Resources"]
    layer_dirs = {
        logical_id: Path(r["Properties"]["ContentUri"]).name.removesuffix(".zip")
        for logical_id, r in found.items()
        if r["Type"] == "AWS::Serverless::LayerVersion"
    }
    wiring = {
        logical_id: [item.get("Ref") for item in r["Properties"].get("Layers", [])]
        for logical_id, r in found.items()
        if r["Type"] == "AWS::Serverless::Function"
    }
    return layer_dirs, wiring


LAYER_DIRS, WIRING = _wiring()


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return yaml_parse(TEMPLATE.read_text())


def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


def test_the_pipeline_functions_keep_the_project_plan() -> None:
    # The project plan: DataValidation and Merge use core + aws; the other two use all three.
    assert {CORE, ML, AWS} <= set(LAYER_DIRS)
    assert {f: WIRING.get(f) for f in ("DataValidationFunction", "FeatureEngineeringFunction")} == {
        "DataValidationFunction": [CORE, AWS],
        "FeatureEngineeringFunction": [CORE, ML, AWS],
    }
    assert WIRING.get("PredictionsFunction") == [CORE, ML, AWS] and WIRING.get("MergeFunction") == [CORE, AWS]


def test_function_layer_wiring_fits_the_layers_base_layers() -> None:
    """Every function lists template layers by !Ref, at most five, each after the layers it is built
    on (Lambda extracts them in order) and never without them."""
    project = load_project(ROOT)
    by_dir = {directory: logical_id for logical_id, directory in LAYER_DIRS.items()}
    assert WIRING, "the template defines no functions"
    for function, layers in WIRING.items():
        assert layers and all(layer in LAYER_DIRS for layer in layers), (function, layers)
        assert len(layers) <= 5, function
        for position, layer in enumerate(layers):
            for base in base_layers_of(project, project.layer(LAYER_DIRS[layer])):
                assert by_dir[base.name] in layers[:position], (function, layer, base.name)


def test_layers_declare_exactly_what_is_built(template: dict[str, Any]) -> None:
    for logical_id, directory in LAYER_DIRS.items():
        layer = resources(template)[logical_id]
        assert layer["Type"] == "AWS::Serverless::LayerVersion"
        props = layer["Properties"]
        # The stage's runtime and architecture (PythonRuntime, Architecture), as the functions'.
        assert props["CompatibleRuntimes"] == [{"Ref": "PythonRuntime"}]
        assert props["CompatibleArchitectures"] == [{"Ref": "Architecture"}]
        assert props["RetentionPolicy"] == "Retain"
        # The Defaults' zip; `inv deploy` points it at the stage's runtime-arch zip of that name.
        built = BuildPaths.of(ROOT).output_dir("python3.12", "x86_64") / f"{directory}.zip"
        assert props["ContentUri"] == os.path.relpath(built, TEMPLATE.parent)
        assert (ROOT / "layers" / directory / "layer.toml").exists()


def test_functions_run_the_runtime_the_layers_target(template: dict[str, Any]) -> None:
    function_globals = template["Globals"]["Function"]
    assert function_globals["Runtime"] == {"Ref": "PythonRuntime"}
    assert function_globals["Architectures"] == [{"Ref": "Architecture"}]
    parameters = template["Parameters"]
    assert (parameters["PythonRuntime"]["Default"], parameters["Architecture"]["Default"]) == ("python3.12", "x86_64")
    for function in WIRING:
        props = resources(template)[function]["Properties"]
        package = props["Handler"].split(".")[0]
        assert (ROOT / "infra" / props["CodeUri"] / package / "handler.py").resolve().exists()
        assert props["AutoPublishCodeSha256"] == {"Ref": function.replace("Function", "LayersSha256")}


EXPECTED_ACCESS = {
    "DataValidationFunction": {
        ("s3:GetObject", "DataBucket", "incoming/*"),
        ("s3:PutObject", "DataBucket", "reports/*"),
        ("s3:DeleteObject", "DataBucket", "reports/*"),
        ("s3:PutObject", "DataBucket", "quarantine/*"),
        ("s3:DeleteObject", "DataBucket", "quarantine/*"),
        ("s3:PutObject", "DataBucket", "validated/*"),
        ("s3:DeleteObject", "DataBucket", "validated/*"),
        # A large upload's chunks, as multipart uploads, aborted when the batch fails.
        ("s3:PutObject", "DataBucket", "chunks/validated/*"),
        ("s3:AbortMultipartUpload", "DataBucket", "chunks/validated/*"),
        ("s3:AbortMultipartUpload", "DataBucket", "quarantine/*"),
        # A failing or rejected re-upload removes the previous run's later results.
        ("s3:DeleteObject", "DataBucket", "features/*"),
        ("s3:DeleteObject", "DataBucket", "predictions/*"),
        # The batch's registry item: which upload revision the card history counts.
        ("dynamodb:BatchGetItem", "CardHistoryTable", ""),
        ("dynamodb:PutItem", "CardHistoryTable", ""),
    },
    "FeatureEngineeringFunction": {
        ("s3:GetObject", "DataBucket", "validated/*"),
        ("s3:GetObject", "DataBucket", "chunks/validated/*"),
        ("s3:GetObject", "DataBucket", "incoming/*"),  # HEAD: is this run still the latest upload?
        ("s3:PutObject", "DataBucket", "features/*"),
        ("s3:DeleteObject", "DataBucket", "features/*"),
        ("s3:PutObject", "DataBucket", "chunks/features/*"),
        ("s3:DeleteObject", "DataBucket", "chunks/features/*"),
        ("s3:GetObject", "ModelBucket", "models/*"),
        # Per-card history: read a card's earlier transactions, record the batch's.
        ("dynamodb:Query", "CardHistoryTable", ""),
        ("dynamodb:Query", "CardHistoryTable", "index/by_time"),
        ("dynamodb:BatchWriteItem", "CardHistoryTable", ""),
        ("dynamodb:BatchWriteItem", "CardHistoryTable", "index/by_time"),
        # Each history batch's current revision (registry items).
        ("dynamodb:BatchGetItem", "CardHistoryTable", ""),
        ("dynamodb:BatchGetItem", "CardHistoryTable", "index/by_time"),
    },
    "PredictionsFunction": {
        ("s3:GetObject", "DataBucket", "features/*"),
        ("s3:GetObject", "DataBucket", "chunks/features/*"),
        ("s3:GetObject", "DataBucket", "incoming/*"),
        ("s3:PutObject", "DataBucket", "predictions/*"),
        ("s3:DeleteObject", "DataBucket", "predictions/*"),
        ("s3:PutObject", "DataBucket", "chunks/predictions/*"),
        ("s3:DeleteObject", "DataBucket", "chunks/predictions/*"),
        ("s3:GetObject", "ModelBucket", "models/*"),
    },
    # Reads the chunks, writes the batch's outputs (UploadPartCopy), removes the merged chunks.
    "MergeFunction": {
        ("s3:GetObject", "DataBucket", "chunks/*"),
        ("s3:GetObject", "DataBucket", "incoming/*"),
        ("s3:GetObject", "DataBucket", "predictions/*"),
        *(
            (action, "DataBucket", f"{prefix}/*")
            for action in ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")
            for prefix in ("validated", "features", "predictions")
        ),
        ("s3:DeleteObject", "DataBucket", "chunks/*"),
    },
}


def test_each_function_reaches_only_its_prefixes(template: dict[str, Any]) -> None:
    for function, expected in EXPECTED_ACCESS.items():
        granted = set()
        for policy in resources(template)[function]["Properties"]["Policies"]:
            for statement in policy["Statement"]:
                assert statement["Effect"] == "Allow"
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                for action in actions:
                    for target in targets:
                        if "Fn::GetAtt" in target:  # a whole resource: the card-history table
                            assert target["Fn::GetAtt"][1] == "Arn", target
                            granted.add((action, target["Fn::GetAtt"][0], ""))
                            continue
                        match = re.fullmatch(r"\$\{(\w+)\.Arn\}/(.+)", target["Fn::Sub"])
                        assert match, target
                        granted.add((action, match[1], match[2]))
        assert granted == expected, function


def test_data_validation_reaches_only_the_batch_registry_items(template: dict[str, Any]) -> None:
    """DataValidation writes the per-batch registry items of the card-history table, never a card's."""
    statements = [
        statement
        for policy in resources(template)["DataValidationFunction"]["Properties"]["Policies"]
        for statement in policy["Statement"]
        if any(str(action).startswith("dynamodb:") for action in statement["Action"])
    ]
    assert [s["Condition"] for s in statements] == [{"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["#batch#*"]}}]


def test_bucket_names_match_the_training_upload(template: dict[str, Any]) -> None:
    trainer = (ROOT / "services" / "training" / "trainer_io.py").read_text()
    prefix = re.search(r'^STACK_PREFIX = "([^"]+)"', trainer, re.M)[1]  # type: ignore[index]
    name = resources(template)["ModelBucket"]["Properties"]["BucketName"]["Fn::Sub"]
    assert name == f"{prefix}-${{Stage}}-models-${{AWS::AccountId}}"


def _walk(states: dict[str, Any], state: str) -> list[str]:
    """The states from `state` to a Succeed along the success path, checking each Choice's
    other ways out: a Fail by default, a Succeed for a run a newer upload replaced."""
    order = []
    while states[state]["Type"] != "Succeed":
        order.append(state)
        current = states[state]
        if current["Type"] == "Choice":
            choice, superseded = current["Choices"]
            assert states[current["Default"]]["Type"] == "Fail"
            # A run a newer upload replaced ends quietly: the newer run publishes the batch.
            assert superseded["StringEquals"] == "superseded" and states[superseded["Next"]]["Type"] == "Succeed"
            state = choice["Next"]
        else:
            state = current["Next"]
    return order


def test_state_machine_stops_at_a_failed_validation_and_fans_out_over_chunks(template: dict[str, Any]) -> None:
    definition = resources(template)["PipelineStateMachine"]["Properties"]["Definition"]
    states = definition["States"]
    assert definition["StartAt"] == "Validate"
    assert _walk(states, "Validate") == ["Validate", "ValidationPassed", "ScoreChunks", "Merge", "Merged"]
    assert states["ValidationPassed"]["Choices"][0] == {
        "Variable": "$.status",
        "StringEquals": "passed",
        "Next": "ScoreChunks",
    }
    fan_out = states["ScoreChunks"]
    assert fan_out["Type"] == "Map" and fan_out["ItemsPath"] == "$.chunks"
    assert fan_out["ItemSelector"]["chunk.$"] == "$$.Map.Item.Value" and fan_out["ResultPath"] is None
    # No more chunks at once than the functions it runs may run at once.
    for function in ("FeatureEngineeringFunction", "PredictionsFunction"):
        assert fan_out["MaxConcurrency"] == resources(template)[function]["Properties"]["ReservedConcurrentExecutions"]
    processor = fan_out["ItemProcessor"]
    assert processor["ProcessorConfig"] == {"Mode": "INLINE"}
    assert _walk(processor["States"], processor["StartAt"]) == [
        "BuildFeatures",
        "FeaturesBuilt",
        "Predict",
        "PredictionsWritten",
    ]


def test_outputs_name_every_arn_and_bucket(template: dict[str, Any]) -> None:
    expected = {
        "DataBucketName",
        "ModelBucketName",
        "PipelineStateMachineArn",
        "AlarmTopicArn",
        *(f"{layer}Arn" for layer in LAYER_DIRS),
        *(f"{f.removesuffix('Function')}FunctionArn" for f in WIRING),
        *(f"{f.removesuffix('Function')}AliasArn" for f in WIRING),
    }
    assert expected <= set(template["Outputs"])


def test_alarms_cover_errors_throttles_duration_and_init_duration_for_every_function(template: dict[str, Any]) -> None:
    alarms = [r["Properties"] for r in resources(template).values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    filters = [r["Properties"] for r in resources(template).values() if r["Type"] == "AWS::Logs::MetricFilter"]
    assert all(a["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in alarms)
    for function in WIRING:
        metrics = {a["MetricName"] for a in alarms if a.get("Dimensions", [{}])[0].get("Value") == {"Ref": function}}
        assert metrics == {"Errors", "Throttles", "Duration"}, function
        # Init duration: a metric named after the function, from its log group's REPORT lines.
        init = [a for a in alarms if a["MetricName"] == {"Ref": function}]
        assert [(a["Namespace"], a["ExtendedStatistic"], a["Threshold"]) for a in init] == [
            ("LambdaMLLayers/InitDuration", "p95", {"Ref": "InitDurationAlarmMs"})
        ], function
        log_group = function.removesuffix("Function") + "LogGroup"
        (metric_filter,) = [f for f in filters if f["LogGroupName"] == {"Ref": log_group}]
        assert metric_filter["MetricTransformations"][0]["MetricName"] == {"Ref": function}
        assert "Init" in metric_filter["FilterPattern"] and "REPORT" in metric_filter["FilterPattern"]


# Merge's per-batch FlagRate point (services/shared/batch_summary.py; tests/services/test_flag_rate.py
# checks the handler emits exactly these).
FLAG_RATE = {"Namespace": "LambdaMLPipeline", "MetricName": "FlagRate"}
FLAG_RATE_DIMENSIONS = [{"Name": "function_name", "Value": "Merge"}, {"Name": "service", "Value": "merge"}]


def test_flag_rate_alarms_fire_when_one_batch_leaves_the_band(template: dict[str, Any]) -> None:
    high, low = (resources(template)[f"FlagRate{side}Alarm"]["Properties"] for side in ("High", "Low"))
    for alarm, statistic, threshold, comparison in (
        (high, "Maximum", "FlagRateHighPercent", "GreaterThanThreshold"),
        (low, "Minimum", "FlagRateLowPercent", "LessThanThreshold"),
    ):
        assert {k: alarm[k] for k in FLAG_RATE} == FLAG_RATE
        assert alarm["Dimensions"] == FLAG_RATE_DIMENSIONS
        assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
            statistic,
            {"Ref": threshold},
            comparison,
        )
        assert alarm["EvaluationPeriods"] == 1 and alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        assert "docs/operations.md" in alarm["AlarmDescription"]
    parameters = template["Parameters"]
    low_default, high_default = (parameters[f"FlagRate{side}Percent"]["Default"] for side in ("Low", "High"))
    assert 0 < low_default < high_default <= 100
    assert high_default == 4 * low_default  # half and twice one expected rate


def test_the_dashboard_shows_the_flag_rate_against_the_alarm_band(template: dict[str, Any]) -> None:
    body, names = resources(template)["PipelineDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    values = {**{name: f"<{name}>" for name in names}, "FlagRateHighPercent": 8, "FlagRateLowPercent": 2}
    text = re.sub(r"\$\{([A-Za-z:]+)\}", lambda m: str(values.get(m.group(1), f"<{m.group(1)}>")), body)
    widgets = json.loads(text)["widgets"]
    [widget] = [w for w in widgets if any("FlagRate" in metric for metric in w["properties"]["metrics"])]
    metrics = widget["properties"]["metrics"]
    selected = ["LambdaMLPipeline", "FlagRate", "function_name", "Merge", "service", "merge"]
    assert [m[:6] for m in metrics] == [selected, selected]
    assert {m[6]["stat"] for m in metrics} == {"Maximum", "Minimum"}
    band = {line["label"]: line["value"] for line in widget["properties"]["annotations"]["horizontal"]}
    assert band == {"FlagRateHighAlarm": 8, "FlagRateLowAlarm": 2}  # drawn from the same parameters


def test_alarm_topic_subscriber_comes_from_the_stage(template: dict[str, Any]) -> None:
    subscription = resources(template)["AlarmSubscription"]
    assert subscription["Condition"] == "AlarmsGoSomewhere"
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": "AlarmTopic"},
        "Protocol": {"Ref": "AlarmProtocol"},
        "Endpoint": {"Ref": "AlarmEndpoint"},
    }
    assert template["Parameters"]["AlarmProtocol"]["AllowedValues"] == ["none", "email", "https"]


def test_samconfig_has_the_four_stages() -> None:
    for name in ("local", "dev", "staging", "prod"):
        stage = load_stage(ROOT, name)  # the one stage reader
        assert stage.parameters == {"Stage": name}
        assert stage.stack_name == f"lambda-ml-layers-{name}"


# --- the real SAM transform ------------------------------------------------------------


class NoManagedPolicyLookups:
    """The template names no managed policy by name, so the transform must never ask IAM."""

    def load(self) -> dict[str, str]:
        raise AssertionError("the transform tried to look up managed policies in IAM")


def packaged(template: dict[str, Any], layer_zip_keys: dict[str, str]) -> dict[str, Any]:
    """The template as `sam package` leaves it: local paths replaced by S3 URIs."""
    out = copy.deepcopy(template)
    for logical_id, resource in out["Resources"].items():
        props = resource.get("Properties", {})
        if "CodeUri" in props:
            props["CodeUri"] = f"s3://artifacts/{logical_id}.zip"
        if "ContentUri" in props:
            props["ContentUri"] = f"s3://artifacts/{layer_zip_keys.get(logical_id, logical_id)}.zip"
    return out


def versions(template: dict[str, Any], layer_zip_keys: dict[str, str], parameters: dict[str, str]) -> dict[str, str]:
    """Function -> logical id of the AWS::Lambda::Version the transform publishes."""
    result = transform(
        packaged(template, layer_zip_keys),
        {"Stage": "dev", "AWS::Region": "us-east-1", **parameters},
        NoManagedPolicyLookups(),
    )
    out = {}
    for logical_id, resource in result["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Version":
            out[logical_id.split("Version")[0]] = logical_id
    return out


def test_transform_produces_aliases_and_versions(template: dict[str, Any]) -> None:
    assert set(versions(template, {}, {})) == set(WIRING)


def test_a_layer_change_publishes_new_versions_of_the_functions_using_it(template: dict[str, Any]) -> None:
    before = versions(
        template, {ML: "ml-aaaa"}, {"FeatureEngineeringLayersSha256": "a" * 64, "PredictionsLayersSha256": "a" * 64}
    )
    after = versions(
        template, {ML: "ml-bbbb"}, {"FeatureEngineeringLayersSha256": "b" * 64, "PredictionsLayersSha256": "b" * 64}
    )
    assert after["FeatureEngineeringFunction"] != before["FeatureEngineeringFunction"]
    assert after["PredictionsFunction"] != before["PredictionsFunction"]
    assert after["DataValidationFunction"] == before["DataValidationFunction"]  # it does not use ML


def test_without_the_layer_sha_sam_would_not_publish(template: dict[str, Any]) -> None:
    # DESIGN.md section 2: the gap AutoPublishCodeSha256 closes. New layer content alone
    # leaves every version logical id, and so the published alias, unchanged.
    before = versions(template, {ML: "ml-aaaa"}, {})
    after = versions(template, {ML: "ml-bbbb"}, {})
    assert after == before


def deploy_versions(template: dict[str, Any]) -> dict[str, str]:
    """The version logical ids with the `<Function>LayersSha256` values `inv deploy` computes
    (fixed package and layer digests: only the template varies)."""
    from lambda_ml_layers.deploy.deploy_template import function_layers, layers_sha_parameters

    layer_shas = {layer: "1" * 64 for layer in LAYER_DIRS}
    code = dict.fromkeys(function_layers(template), "2" * 64)
    parameters = layers_sha_parameters(template, layer_shas, code, {"Stage": "dev"})
    return versions(template, {}, parameters)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("MemorySize", 3008),
        ("Timeout", 60),
        ("Environment", {"Variables": {"POWERTOOLS_SERVICE_NAME": "merge", "EXTRA": "1"}}),
        ("ReservedConcurrentExecutions", 5),
    ],
)
def test_a_configuration_change_publishes_a_new_version(template: dict[str, Any], setting: str, value: Any) -> None:
    """Issue 19: SAM names the version from AutoPublishCodeSha256 alone, so the deploy's digest
    must cover the configuration, or `live` stays on the old version while $LATEST changes."""
    before = deploy_versions(template)
    changed = copy.deepcopy(template)
    changed["Resources"]["MergeFunction"]["Properties"][setting] = value
    after = deploy_versions(changed)
    assert after["MergeFunction"] != before["MergeFunction"]
    assert {f: v for f, v in after.items() if f != "MergeFunction"} == {
        f: v for f, v in before.items() if f != "MergeFunction"
    }
    assert deploy_versions(changed) == after  # the same template again publishes nothing


def test_a_global_environment_change_publishes_every_function(template: dict[str, Any]) -> None:
    before = deploy_versions(template)
    changed = copy.deepcopy(template)
    changed["Globals"]["Function"]["Environment"]["Variables"]["MODEL_CACHE_DIR"] = "/tmp/elsewhere"
    after = deploy_versions(changed)
    assert all(after[function] != before[function] for function in WIRING)


def test_all_properties_alone_is_ignored_when_the_code_sha_is_set(template: dict[str, Any]) -> None:
    # Why the digest covers the configuration: with AutoPublishCodeSha256 set, SAM's
    # AutoPublishAliasAllProperties changes nothing (the version is named by that digest alone).
    fixed = dict.fromkeys((f.replace("Function", "LayersSha256") for f in WIRING), "3" * 64)
    changed = copy.deepcopy(template)
    for properties in (changed["Resources"]["MergeFunction"]["Properties"], template["Globals"]["Function"]):
        properties.setdefault("AutoPublishAliasAllProperties", True)
    changed["Globals"]["Function"]["AutoPublishAliasAllProperties"] = True
    changed["Resources"]["MergeFunction"]["Properties"]["MemorySize"] = 3008
    assert versions(changed, {}, fixed)["MergeFunction"] == versions(template, {}, fixed)["MergeFunction"]
