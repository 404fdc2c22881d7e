"""Handler plumbing every pipeline function shares: logging, metrics, layer imports, S3 I/O.

Lambda packages each function's folder alone (CodeUri), so every function package has
`<package>/runtime.py` as a link to this file: `sam package` and the project's sandbox store
the link's content. tests/services/test_shared_copies.py checks the links.

Standard library and aws-lambda-powertools only at import time (without Powertools' layer the
module still loads, and `layer_imports` reports that layer); the other layer packages are imported
through `layer_imports`, so a missing layer is reported as such and not as a bare ImportError.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sys
import sysconfig
import time
import traceback
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from . import pruned_modules

# Which layer (by its logical id in infra/template.yaml) provides each top-level module:
# generated from the built layers by `inv layer-modules` (lambda_ml_layers/checks/module_map.py),
# linked into each function package beside this file.
with open(os.path.join(os.path.dirname(__file__), "layer_modules.json"), encoding="utf-8") as _map:
    LAYER_OF_MODULE: dict[str, str] = json.load(_map)["modules"]
# The Lambda runtime ships its own boto3 (in LAMBDA_RUNTIME_DIR, /var/runtime, or the
# interpreter's own site-packages); importing that proves nothing about the layer, so on
# Lambda these must not come from there. (Asking "not from the runtime" rather than "from
# /opt" keeps the check true in the project's sandbox, which extracts layers elsewhere.)
_RUNTIME_ALSO_SHIPS = {"boto3", "botocore"}


def _runtime_roots() -> tuple[str, ...]:
    roots = {os.environ.get("LAMBDA_RUNTIME_DIR", "/var/runtime")}
    roots.update(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    return tuple(root.rstrip("/") + "/" for root in roots if root)


METRICS_NAMESPACE = "LambdaMLPipeline"


class LayerMissingError(ImportError):
    """A module a layer provides could not be imported: the layer is not attached."""


class PipelineError(Exception):
    """Bad input or state the caller can act on; becomes a structured error result."""

    error_type = "PipelineError"


class BadEvent(PipelineError):
    error_type = "BadEvent"


class BadInput(PipelineError):
    error_type = "BadInput"


class ArtifactError(PipelineError):
    error_type = "ArtifactError"


class Superseded(Exception):
    """A newer upload of the batch replaced the one this run read: the run publishes nothing and
    ends with status "superseded" (not an error: the newer run publishes the batch)."""


# Powertools comes from AWSUtilitiesLayer. Without that layer the handler module must still load as
# far as its layer_imports block, which then fails the init naming the layer, as for any other layer.
_powertools_missing: str | None = None
try:
    from aws_lambda_powertools import Logger as _PowertoolsLogger
    from aws_lambda_powertools.metrics import EphemeralMetrics
except ModuleNotFoundError as _exc:
    _powertools_missing = (_exc.name or "").split(".")[0]
    if _powertools_missing not in LAYER_OF_MODULE:
        raise

    class _PowertoolsLogger:  # type: ignore[no-redef]
        """Just enough of a logger for layer_imports' one ERROR line, the only line written then."""

        def __init__(self, service: str, **_: Any) -> None:
            self.service = service
            self.keys: dict[str, Any] = {}

        def error(self, msg: object, *args: object, stacklevel: int = 2, **extra: Any) -> None:
            line = {"level": "ERROR", "message": msg, "service": self.service, **self.keys, **extra}
            print(json.dumps(line, default=str), flush=True)

        def append_context_keys(self, **keys: Any) -> contextlib.AbstractContextManager[None]:
            self.keys = keys
            return contextlib.nullcontext()

    EphemeralMetrics = object  # type: ignore[misc,assignment]


# --- logging and metrics ----------------------------------------------------------------
# Powertools (aws-lambda-powertools, in AWSUtilitiesLayer) writes both: the JSON log lines and
# the CloudWatch Embedded Metric Format lines the dashboard's metrics come from.

# Keys the standard library refuses in a record's `extra` (LogRecord's own attributes): Powertools
# passes keyword arguments there, so `logger.error(..., module="pandas")` would raise KeyError.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class _CurrentStdout:
    """Whatever sys.stdout is at each write. A logging handler keeps the stream it was given when the
    handler module was imported; Python-level captures (pytest's capsys, contextlib.redirect_stdout)
    replace sys.stdout later, and the lines must reach them as print() lines did."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


class Logger(_PowertoolsLogger):
    """Powertools' Logger: one JSON object per line (level, location, message, timestamp, service,
    the invocation's keys, then the call's keyword arguments), timestamps in ISO 8601 UTC."""

    def __init__(self, service: str) -> None:
        # Powertools writes values JSON cannot (numpy scalars, paths) as str(): they never break a line.
        super().__init__(service=service, stream=_CurrentStdout(), utc=True, use_rfc3339=True)

    def info(self, msg: object, *args: object, **extra: Any) -> None:
        with self._record_keys(extra):
            super().info(msg, *args, stacklevel=3, **extra)

    def warning(self, msg: object, *args: object, **extra: Any) -> None:
        with self._record_keys(extra):
            super().warning(msg, *args, stacklevel=3, **extra)

    def error(self, msg: object, *args: object, **extra: Any) -> None:
        with self._record_keys(extra):
            super().error(msg, *args, stacklevel=3, **extra)

    def _record_keys(self, extra: dict[str, Any]) -> contextlib.AbstractContextManager[None]:
        """Move keys named like a LogRecord attribute out of `extra` into keys for this one line
        (Powertools %-formats those against the record, hence the doubled '%')."""
        clashing = {key: extra.pop(key) for key in [key for key in extra if key in _RECORD_ATTRIBUTES]}
        return self.append_context_keys(**{key: str(value).replace("%", "%%") for key, value in clashing.items()})


class _MetricLine(EphemeralMetrics):
    """EMF in one line per metric, each value a plain number: EMF accepts a number or a list, and
    Powertools always writes a list; readers of these lines (tests, log queries) compare numbers."""

    def serialize_metric_set(
        self, metrics: dict[str, Any] | None = None, dimensions: dict[str, Any] | None = None, metadata: Any = None
    ) -> Any:
        document = super().serialize_metric_set(metrics, dimensions, metadata)
        for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            values = document[metric["Name"]]
            if isinstance(values, list) and len(values) == 1:
                document[metric["Name"]] = values[0]
        return document


def emit_metric(service: str, name: str, value: float, unit: str = "Count", **dims: str) -> None:
    """Write one CloudWatch Embedded Metric Format line: CloudWatch turns it into a metric."""
    metric = _MetricLine(namespace=METRICS_NAMESPACE)
    metric.add_metric(name=name, unit=unit, value=value)
    for dimension, dimension_value in sorted({"service": service, **dims}.items()):
        metric.add_dimension(name=dimension, value=dimension_value)
    metric.flush_metrics()


# --- layer imports ----------------------------------------------------------------------


@contextlib.contextmanager
def layer_imports(function: str, logger: Logger) -> Iterator[None]:
    """Wrap a handler's top-level imports of layer packages.

    A module that is missing, or (on Lambda) that comes from the runtime instead of a layer,
    fails the init with one line naming the layer to attach and the module.
    """
    if _powertools_missing:
        _fail(function, logger, LAYER_OF_MODULE[_powertools_missing], _powertools_missing, "it is not importable")
    try:
        yield
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        top = missing.split(".")[0]
        layer = LAYER_OF_MODULE.get(top)
        if layer is None:
            raise
        if missing != top and sys.modules.get(top) is not None:
            _pruned(function, logger, layer, missing)  # the layer is there; one of its modules is not
        _fail(function, logger, layer, top, "it is not importable")
    for module in sorted(_RUNTIME_ALSO_SHIPS & set(sys.modules)):
        origin = getattr(sys.modules[module], "__file__", "") or ""
        if os.environ.get("AWS_EXECUTION_ENV") and origin.startswith(_runtime_roots()):
            _fail(
                function,
                logger,
                LAYER_OF_MODULE[module],
                module,
                f"it was loaded from the runtime ({origin}), not from a layer under /opt",
            )


def _pruned(function: str, logger: Logger, layer: str, module: str) -> None:
    message = (
        f"{function} imports '{module}', which layer {layer} does not have: the layer's build pruned it "
        f"([prune] in its layer.toml). Add '{module}' to that [prune] keep (or a `module {module}` line to "
        f"the layer's trace.txt) and rebuild; see docs/layer-contract.md."
    )
    logger.error(message, error_type="ModulePruned", layer=layer, module=module)
    raise LayerMissingError(message) from None


def _fail(function: str, logger: Logger, layer: str, module: str, why: str) -> None:
    message = (
        f"{function} needs layer {layer} for module '{module}', but {why}: add "
        f"!Ref {layer} to {function}'s Layers in infra/template.yaml."
    )
    logger.error(message, error_type="LayerMissing", layer=layer, module=module)
    # from None: the one line above is the whole story; the chained traceback only hides it.
    raise LayerMissingError(message) from None


# --- events and S3 keys ---------------------------------------------------------------

INCOMING_PREFIX = "incoming/"
MAX_BATCH_ID = 200


@dataclass(frozen=True)
class BatchKeys:
    """Where each stage reads and writes one batch in the data bucket (IAM grants these prefixes)."""

    batch_id: str

    @property
    def incoming(self) -> str:
        return f"{INCOMING_PREFIX}{self.batch_id}.csv"

    @property
    def report(self) -> str:
        return f"reports/{self.batch_id}/validation.json"

    @property
    def quarantine(self) -> str:
        return f"quarantine/{self.batch_id}/invalid_rows.csv"

    @property
    def validated(self) -> str:
        return f"validated/{self.batch_id}/valid_rows.csv"

    @property
    def features(self) -> str:
        return f"features/{self.batch_id}/features.csv"

    @property
    def predictions(self) -> str:
        return f"predictions/{self.batch_id}/predictions.csv"

    @property
    def summary(self) -> str:
        return f"predictions/{self.batch_id}/summary.json"


def checked_batch_id(value: object) -> str:
    """Real batch names carry spaces, unicode, '(1)' or ':' (S3 keys take any of them); refused
    are only what breaks a key prefix or a download path: control characters, a backslash,
    empty, '.' or '..' parts, more than MAX_BATCH_ID characters."""
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= MAX_BATCH_ID
        or "\\" in value
        or any(unicodedata.category(ch).startswith("C") for ch in value)
        or any(part in {"", ".", ".."} for part in value.split("/"))
    ):
        raise BadEvent(
            f"batch_id must be a relative name of 1-{MAX_BATCH_ID} printable characters with no backslash "
            f"and no empty, '.' or '..' part, like '2024-05-01/batch 7 (1)', got {value!r}"
        )
    return value


def s3_reference(event: object) -> tuple[str, str]:
    """(bucket, key) from a plain reference, an S3 notification or an EventBridge S3 event."""
    from urllib.parse import unquote_plus

    if not isinstance(event, dict):
        raise BadEvent(f"event must be a JSON object, got {type(event).__name__}")
    if isinstance(event.get("bucket"), str) and isinstance(event.get("key"), str):
        return event["bucket"], event["key"]
    records = event.get("Records")
    if isinstance(records, list):
        if len(records) != 1:
            raise BadEvent(f"expected exactly one S3 record per event, got {len(records)}")
        try:
            s3 = records[0]["s3"]
            # S3 notifications URL-encode keys (a space arrives as '+').
            return s3["bucket"]["name"], unquote_plus(s3["object"]["key"])
        except (KeyError, TypeError):
            raise BadEvent("S3 notification record lacks s3.bucket.name or s3.object.key") from None
    detail = event.get("detail", event)
    if isinstance(detail, dict) and isinstance(detail.get("bucket"), dict):
        try:
            return detail["bucket"]["name"], detail["object"]["key"]
        except (KeyError, TypeError):
            raise BadEvent("EventBridge S3 event lacks detail.bucket.name or detail.object.key") from None
    raise BadEvent(
        "event is not an S3 object reference: send {'bucket': ..., 'key': ...}, "
        "an S3 event notification or an EventBridge 'Object Created' event"
    )


def require_fields(event: object, *fields: str) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise BadEvent(f"event must be a JSON object, got {type(event).__name__}")
    missing = [f for f in fields if not isinstance(event.get(f), str) or not event.get(f)]
    if missing:
        raise BadEvent(f"event lacks string field(s) {', '.join(missing)}; got keys {sorted(event)}")
    return event


# --- S3 ---------------------------------------------------------------------------------


@functools.cache
def s3_client() -> Any:
    """One client per container, made on first use (so AWS_ENDPOINT_URL is read then)."""
    import boto3

    return boto3.client("s3")


def _is_missing(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    # Without s3:ListBucket (least privilege), S3 answers a missing key with 403, not 404.
    return code in {"NoSuchKey", "404", "NotFound", "AccessDenied", "403"}


def read_object(bucket: str, key: str, what: str) -> bytes:
    try:
        return s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        if _is_missing(exc):
            raise BadInput(f"{what} s3://{bucket}/{key} does not exist (or is not readable)") from None
        raise


REVISION_METADATA = "source-revision"  # S3 user metadata: x-amz-meta-source-revision


class Outputs:
    """The objects one invocation writes, removed again if the invocation fails.

    Handlers write their data objects first and their success marker (report, summary)
    last, so a reader never sees a marker without its data; `discard` removes what a failed
    invocation had already written, so nothing half-written is left looking like a result.
    """

    def __init__(self, bucket: str, revision: str | None = None) -> None:
        self.bucket = bucket
        # The upload revision this run read (batch_runs.py): stamped on every object it writes.
        self.metadata = {REVISION_METADATA: revision} if revision else {}
        self.written: list[str] = []

    def put(self, key: str, body: bytes | str, content_type: str) -> str:
        data = body.encode() if isinstance(body, str) else body
        s3_client().put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, Metadata=self.metadata)
        self.written.append(key)
        return key

    def put_json(self, key: str, document: object) -> str:
        return self.put(key, json.dumps(document, indent=2, default=str), "application/json")

    def delete(self, key: str) -> None:
        s3_client().delete_object(Bucket=self.bucket, Key=key)

    def discard(self) -> list[str]:
        removed = []
        for key in reversed(self.written):
            with contextlib.suppress(Exception):  # best effort: the error being handled matters more
                self.delete(key)
                removed.append(key)
        self.written.clear()
        return removed


# --- the handler wrapper ----------------------------------------------------------------

_cold_start = True


Handler = Callable[[Any, Any], dict[str, Any]]


# Sent by `inv deploy` through each function's live alias after a deploy: the function answers
# {"status": "smoke", "function": ...} once its init (all layer imports) has run, and reads or
# writes nothing. The one copy: the engine reads it from here (lambda_ml_layers/local/sandbox.py's
# smoke_event(), for the deploy's smoke run and `inv trace-layers`).
SMOKE_EVENT = {"smoke": "lambda-ml-layers"}


def lambda_entry(function: str, logger: Logger) -> Callable[[Handler], Handler]:
    """Turn `work(event, context)` into a Lambda handler with logging, metrics and error results.

    A PipelineError (bad event, bad input, bad artifact) returns
    {"status": "error", "error": {"type", "message"}} and logs one ERROR line; anything else
    is a bug: it is logged on one line and re-raised, so Lambda counts it in Errors.
    """

    def wrap(work: Handler) -> Handler:
        @functools.wraps(work)
        def handler(event: Any, context: Any) -> dict[str, Any]:
            global _cold_start
            cold, _cold_start = _cold_start, False
            # Powertools' inject_lambda_context would read its own cold-start flag and need a full
            # context; these are the keys it adds that the handlers' lines carry.
            logger.append_keys(
                function_name=getattr(context, "function_name", function),
                function_request_id=getattr(context, "aws_request_id", None),
                cold_start=cold,
            )
            if cold:
                emit_metric(logger.service, "ColdStart", 1, function_name=function)
            if event == SMOKE_EVENT:
                # The deploy's post-deploy check: init (every layer import) ran; touch no data.
                logger.info("smoke check", status="smoke")
                return {"status": "smoke", "function": function}
            started = time.perf_counter()
            try:
                result = work(event, context)
            except Superseded as exc:
                logger.warning(str(exc), status="superseded")
                return {"status": "superseded", "reason": str(exc)}
            except PipelineError as exc:
                logger.error(str(exc), error_type=exc.error_type)
                emit_metric(logger.service, "FailedBatches", 1, function_name=function)
                return {"status": "error", "error": {"type": exc.error_type, "message": str(exc)}}
            except Exception as exc:
                if pruned_modules.log_if_pruned(exc, logger.error):  # the sandbox's message, on Lambda too
                    raise
                last = traceback.extract_tb(exc.__traceback__)[-1]
                logger.error(
                    f"unexpected {type(exc).__name__}: {exc}",
                    error_type="Unexpected",
                    at=f"{last.filename}:{last.lineno}",
                )
                raise
            logger.info(
                "done", status=result.get("status"), duration_ms=round((time.perf_counter() - started) * 1000, 1)
            )
            return result

        return handler

    return wrap
