"""A local Lambda Runtime API for one execution environment: what awslambdaric talks to.

The sandbox puts one invocation at a time in (`invoke`); the runtime takes it with
GET /2018-06-01/runtime/invocation/next and answers with POST .../{id}/response or .../{id}/error,
or reports a failed init with POST /2018-06-01/runtime/init/error. Everything the runtime sends
arrives, timed on the sandbox's clock, as a `RuntimeMessage` on `messages`. Every response carries
a Content-Type: awslambdaric's native client crashes on a /next response without one.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"
ACCOUNT = "123456789012"


@dataclass(frozen=True)
class RuntimeMessage:
    kind: str  # "next" (the runtime is ready for an event), "response", "error" or "init_error"
    request_id: str | None
    body: Any  # the response's JSON (or raw text when it is not JSON); None for "next"
    at: float  # time.time() when it arrived (the runtime process reports its start on the same clock)


@dataclass(frozen=True)
class PendingInvocation:
    request_id: str
    event: Any
    deadline_ms: int
    function_arn: str
    client_context: dict[str, Any] | None = None
    identity: dict[str, Any] | None = None


_CLOSED = object()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A runtime killed mid-request (timeout, memory, stop) drops its connection: expected, not news."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class RuntimeAPI:
    """One Runtime API server on a free localhost port, for one runtime process."""

    def __init__(self) -> None:
        self.messages: queue.Queue[RuntimeMessage] = queue.Queue()
        self._events: queue.Queue[object] = queue.Queue()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes: with Nagle's algorithm on, the client's delayed
            # ACK held every warm /next answer back by about 40-90 ms.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the function's log is the runtime's output, not this server's

            def do_GET(self) -> None:
                if self.path != f"{PREFIX}/invocation/next":
                    self._send(404, {"errorType": "NotFound", "errorMessage": f"no route {self.path}"})
                    return
                api.messages.put(RuntimeMessage("next", None, None, time.time()))
                pending = api._events.get()
                if not isinstance(pending, PendingInvocation):
                    # The environment is being shut down: an error makes the runtime's loop end.
                    self._send(500, {"errorType": "Runtime.Shutdown", "errorMessage": "environment stopped"})
                    return
                trace = f"Root=1-{int(time.time()):08x}-{pending.request_id.replace('-', '')[:24]}"
                headers = {
                    "Lambda-Runtime-Aws-Request-Id": pending.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(pending.deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": pending.function_arn,
                    "Lambda-Runtime-Trace-Id": trace,
                }
                if pending.client_context is not None:
                    headers["Lambda-Runtime-Client-Context"] = json.dumps(pending.client_context)
                if pending.identity is not None:
                    headers["Lambda-Runtime-Cognito-Identity"] = json.dumps(pending.identity)
                self._send(200, pending.event, headers)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                parts = self.path.removeprefix(PREFIX).strip("/").split("/")
                if parts == ["init", "error"]:
                    message = RuntimeMessage("init_error", None, body, time.time())
                elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    message = RuntimeMessage(parts[2], parts[1], body, time.time())
                else:
                    self._send(404, {"errorType": "NotFound", "errorMessage": f"no route {self.path}"})
                    return
                api.messages.put(message)
                self._send(202, {"status": "OK"})

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """host:port, for AWS_LAMBDA_RUNTIME_API."""
        return f"127.0.0.1:{self._server.server_port}"

    def invoke(self, pending: PendingInvocation) -> None:
        self._events.put(pending)

    def close(self) -> None:
        """Answer a waiting /next with an error (so the runtime's loop ends) and stop serving."""
        self._events.put(_CLOSED)
        self._server.shutdown()
        self._server.server_close()
