"""An inline Map: one iteration of the ItemProcessor (or Iterator) per item of ItemsPath, at most
MaxConcurrency at once (0: all at once) on a thread pool, the results in item order.

Each item's input is ItemSelector (or Parameters, its older name) filled with `$$.Map.Item.Value`
and `$$.Map.Item.Index`, or the item itself. As on AWS, the first iteration to fail fails the
Map with its error: iterations not yet started are not started, those running are let finish.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, Protocol

from .failures import RUNTIME, StatesFailure
from .history import HistoryRecorder
from .json_paths import fill_template, read_path


class ScopeRunner(Protocol):
    history: HistoryRecorder

    def run_scope(self, scope: dict[str, Any], data: Any, context: dict[str, Any], prefix: str) -> Any: ...


class _NotStarted(Exception):
    """An iteration skipped because another one had already failed."""


def workers_for(max_concurrency: int, items: int) -> int:
    """Threads for a Map: MaxConcurrency (0 means no limit), never more than there are items."""
    return max(1, min(max_concurrency or items, items))


def run_map(
    runner: ScopeRunner, name: str, state: dict[str, Any], effective: Any, context: dict[str, Any], where: str
) -> list[Any]:
    items = read_path(state.get("ItemsPath", "$"), effective, context)
    if not isinstance(items, list):
        raise StatesFailure(RUNTIME, f"state {name}: ItemsPath {state.get('ItemsPath', '$')!r} is not an array")
    if not items:
        return []
    selector = state.get("ItemSelector", state.get("Parameters"))
    processor: dict[str, Any] = state.get("ItemProcessor") or state["Iterator"]
    failed = threading.Event()
    failures: list[BaseException] = []  # in the order they happened
    lock = threading.Lock()

    def iteration(index: int, item: Any) -> Any:
        if failed.is_set():
            raise _NotStarted
        here = f"{where}[{index}]"
        item_context = {**context, "Map": {"Item": {"Index": index, "Value": item}}}
        value = item if selector is None else fill_template(selector, effective, item_context)
        runner.history.record("MapIterationStarted", name, here)
        try:
            output = runner.run_scope(processor, value, context, f"{here}/")
        except BaseException as exc:
            with lock:
                failures.append(exc)
            failed.set()
            if isinstance(exc, StatesFailure):
                runner.history.record("MapIterationFailed", name, here, error=exc.error, cause=exc.cause)
            raise
        runner.history.record("MapIterationSucceeded", name, here)
        return output

    pool = ThreadPoolExecutor(workers_for(int(state.get("MaxConcurrency", 0)), len(items)), f"map-{name}")
    try:
        futures = [pool.submit(iteration, index, item) for index, item in enumerate(items)]
        wait(futures, return_when=FIRST_EXCEPTION)
    except BaseException:
        _abandon(pool, failed)  # Ctrl-C while waiting
        raise
    if failures and not isinstance(failures[0], StatesFailure):
        _abandon(pool, failed)  # Ctrl-C or a LayerToolError in an iteration: no execution result to wait for
        raise failures[0]
    pool.shutdown(wait=True, cancel_futures=True)  # a failed execution still lets running iterations end
    if failures:
        raise failures[0]
    return [future.result() for future in futures]


def _abandon(pool: ThreadPoolExecutor, failed: threading.Event) -> None:
    """Start nothing more and do not wait: the caller's way out (the sandbox invoker's exit) stops
    the sandboxes the running iterations wait on, which ends them."""
    failed.set()
    pool.shutdown(wait=False, cancel_futures=True)
