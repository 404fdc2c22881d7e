"""The sandbox's local Lambda Runtime API, spoken to over HTTP as awslambdaric does."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator

import pytest

from lambda_ml_layers.local.runtime_api import PREFIX, PendingInvocation, RuntimeAPI


@pytest.fixture
def api() -> Iterator[RuntimeAPI]:
    server = RuntimeAPI()
    yield server
    server.close()


def request(api: RuntimeAPI, method: str, path: str, body: bytes | None = None) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(api.address, timeout=10)
    connection.request(method, path, body=body)
    return connection.getresponse()


def test_next_hands_out_the_event_with_lambdas_headers_and_a_content_type(api: RuntimeAPI) -> None:
    pending = PendingInvocation("req-1", {"n": 1}, 1_900_000_000_000, "arn:aws:lambda:us-east-1:1:function:f", {"a": 1})
    threading.Timer(0.2, api.invoke, [pending]).start()  # /next blocks until an event is queued
    response = request(api, "GET", f"{PREFIX}/invocation/next")
    assert response.status == 200 and json.loads(response.read()) == {"n": 1}
    # awslambdaric's native client crashes on a /next answer without Content-Type.
    assert response.getheader("Content-Type") == "application/json"
    assert response.getheader("Lambda-Runtime-Aws-Request-Id") == "req-1"
    assert response.getheader("Lambda-Runtime-Deadline-Ms") == "1900000000000"
    assert response.getheader("Lambda-Runtime-Invoked-Function-Arn") == pending.function_arn
    assert json.loads(response.getheader("Lambda-Runtime-Client-Context") or "") == {"a": 1}
    assert response.getheader("Lambda-Runtime-Cognito-Identity") is None
    assert api.messages.get(timeout=1).kind == "next"


@pytest.mark.parametrize(
    ("path", "kind", "request_id"),
    [
        (f"{PREFIX}/invocation/req-1/response", "response", "req-1"),
        (f"{PREFIX}/invocation/req-1/error", "error", "req-1"),
        (f"{PREFIX}/init/error", "init_error", None),
    ],
)
def test_what_the_runtime_posts_arrives_as_a_message(
    api: RuntimeAPI, path: str, kind: str, request_id: str | None
) -> None:
    response = request(api, "POST", path, b'{"errorType": "ValueError"}')
    assert response.status == 202 and response.getheader("Content-Type") == "application/json"
    message = api.messages.get(timeout=1)
    assert (message.kind, message.request_id, message.body) == (kind, request_id, {"errorType": "ValueError"})


def test_an_unknown_route_is_a_404_with_a_content_type(api: RuntimeAPI) -> None:
    response = request(api, "POST", f"{PREFIX}/invocation/req-1/elsewhere", b"{}")
    assert response.status == 404 and response.getheader("Content-Type") == "application/json"
    assert api.messages.empty()


def test_closing_answers_a_waiting_next_with_an_error(api: RuntimeAPI) -> None:
    threading.Timer(0.2, api.close).start()
    response = request(api, "GET", f"{PREFIX}/invocation/next")
    assert response.status == 500 and json.loads(response.read())["errorType"] == "Runtime.Shutdown"
