"""The sandbox's Lambda runtime: import the handler once (init), then invoke it per request.

argv: task folder, paths (JSON list: the layers' folders), handler ("module.function"), the
file descriptor to send results on. Requests come one JSON line each on stdin; each answer is
one JSON line on that descriptor, so the function's own prints (stdout, the log) never mix in.
"""

import importlib
import json
import os
import resource
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any, TextIO


def send(results: TextIO, message: dict[str, Any]) -> None:
    results.write(json.dumps(message, default=str) + "\n")
    results.flush()


def error_document(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorType": error_type or type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc)[-8:],
    }


class Context:
    """What Lambda passes a handler as `context`."""

    def __init__(self, deadline: float) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
        self.memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
        region = os.environ["AWS_REGION"]
        self.invoked_function_arn = f"arn:aws:lambda:{region}:123456789012:function:{self.function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def load_handler(handler_spec: str) -> tuple[Callable[..., Any] | None, dict[str, Any] | None]:
    """(handler, None), or (None, Lambda's init error document)."""
    module_name, _, function_name = handler_spec.rpartition(".")
    try:
        handler: Callable[..., Any] = getattr(importlib.import_module(module_name), function_name)
        return handler, None
    except ImportError as exc:
        traceback.print_exc()
        init_error = error_document(exc, "Runtime.ImportModuleError")
        init_error["errorMessage"] = f"Unable to import module '{module_name}': {exc}"
        return None, init_error
    except Exception as exc:
        traceback.print_exc()
        kind = "Runtime.HandlerNotFound" if isinstance(exc, AttributeError) else "Runtime.Unknown"
        return None, error_document(exc, kind)


def main() -> None:
    task, paths, handler_spec, result_fd = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    sys.path[:0] = [task, *paths]
    results = os.fdopen(result_fd, "w")
    started = time.perf_counter()
    handler, init_error = load_handler(handler_spec)
    send(results, {"ready": True, "import_seconds": time.perf_counter() - started, "init_error": init_error})
    for line in sys.stdin:
        request = json.loads(line)
        began = time.perf_counter()
        response: dict[str, Any]
        if handler is None:
            response = {"error": init_error}
        else:
            try:
                response = {"result": handler(request["event"], Context(request["deadline"]))}
            except Exception as exc:
                traceback.print_exc()
                response = {"error": error_document(exc)}
        response["duration_seconds"] = time.perf_counter() - began
        response["max_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        send(results, response)


if __name__ == "__main__":
    main()
