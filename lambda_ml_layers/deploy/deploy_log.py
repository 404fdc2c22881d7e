"""What a deploy or rollback tells its operator and keeps: lines on the terminal, JSON lines in
build/logs/<command>-<stage>-<time>.jsonl (each step, its duration and outcome, stack events of
a failure). Secrets never reach either: every value of a secret-looking variable is masked."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|_KEY$|APIKEY|API_KEY", re.IGNORECASE)
MASK = "****"


def secret_values(environ: dict[str, str] | None = None) -> list[str]:
    """Values of variables whose names look secret (AWS_SECRET_ACCESS_KEY, *_TOKEN, ...)."""
    env = os.environ if environ is None else environ
    values = {value for name, value in env.items() if _SECRET_NAME.search(name) and len(value) >= 6}
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


class DeployLog:
    def __init__(self, logs_dir: Path, command: str, stage: str, echo: bool = True) -> None:
        logs_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        self.path = logs_dir / f"{command}-{stage}-{stamp}-{os.getpid()}.jsonl"
        self.secrets = secret_values()
        self.echo = echo
        self._handle = self.path.open("a", encoding="utf-8")

    def _write(self, record: dict[str, Any]) -> None:
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **record}
        self._handle.write(redact(json.dumps(record, default=str), self.secrets) + "\n")
        self._handle.flush()

    def say(self, message: str) -> None:
        """A line for the operator (and the log)."""
        message = redact(message, self.secrets)
        if self.echo:
            print(message, flush=True)
        self._write({"event": "message", "message": message})

    def output(self, line: str) -> None:
        """A line of an outside command's output (sam), streamed as it comes."""
        line = redact(line, self.secrets)
        if self.echo:
            print(f"  | {line}", flush=True)
        self._write({"event": "output", "line": line})

    def event(self, name: str, **fields: Any) -> None:
        self._write({"event": name, **fields})

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """A named step: its duration and outcome land in the log whatever happens."""
        started = time.monotonic()
        self.say(f"==> {name}")
        outcome = "failed"
        try:
            yield
            outcome = "ok"
        except KeyboardInterrupt:
            outcome = "interrupted"
            raise
        except Exception as exc:
            self._write({"event": "error", "step": name, "error": str(exc)})
            raise
        finally:
            self._write(
                {"event": "step", "step": name, "outcome": outcome, "seconds": round(time.monotonic() - started, 3)}
            )

    def close(self) -> None:
        self._handle.close()
