"""What an execution leaves: its status, output or error, and an event history (states entered
and exited, tasks with their duration, Map iterations, retries), for tests and benchmarks."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

SUCCEEDED, FAILED = "SUCCEEDED", "FAILED"


@dataclass(frozen=True)
class HistoryEvent:
    kind: str  # ExecutionStarted, StateEntered, StateExited, TaskSucceeded, TaskFailed, TaskRetry, ...
    state: str  # the state's name ('' for the execution's own events)
    where: str  # the state's place: 'Predict', or 'ProcessChunks[2]/Predict' inside a Map iteration
    at_s: float  # seconds since the execution started
    duration_s: float | None = None  # StateExited and Task*: how long the state or the invocation took
    function: str | None = None  # Task*: the function's logical id
    error: str | None = None
    cause: str | None = None


@dataclass(frozen=True)
class ExecutionResult:
    status: str  # SUCCEEDED or FAILED
    output: Any  # the last state's output (None when FAILED)
    error: str | None
    cause: str | None
    history: list[HistoryEvent]
    duration_s: float

    def events(self, kind: str) -> list[HistoryEvent]:
        return [event for event in self.history if event.kind == kind]

    def states_entered(self) -> list[str]:
        """`where` of every state entered, in the order they were entered."""
        return [event.where for event in self.events("StateEntered")]

    def task_seconds(self) -> dict[str, float]:
        """Seconds spent invoking each function, summed over its invocations (Map iterations too)."""
        totals: dict[str, float] = {}
        for event in self.history:
            if event.kind in ("TaskSucceeded", "TaskFailed") and event.function and event.duration_s is not None:
                totals[event.function] = totals.get(event.function, 0.0) + event.duration_s
        return totals


@dataclass
class HistoryRecorder:
    """Thread-safe: Map iterations record from their own threads."""

    started: float = field(default_factory=time.perf_counter)
    events: list[HistoryEvent] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def record(self, kind: str, state: str = "", where: str = "", **detail: Any) -> None:
        event = HistoryEvent(kind, state, where, round(self.elapsed(), 6), **detail)
        with self._lock:
            self.events.append(event)

    def snapshot(self) -> list[HistoryEvent]:
        with self._lock:
            return list(self.events)
