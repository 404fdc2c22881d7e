"""Progress per layer and step: a live display on a terminal, plain lines elsewhere (CI, logs).

It reads the build's typed notices: a `step` moves a layer's line on, a `warning` or `notice`
is printed once (in plain mode, or as a GitHub Actions annotation; the report lists them again
at the end)."""

from __future__ import annotations

import os
import sys
import threading
import time
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table

from .notices import Notice


class BuildProgress:
    def __init__(self, layers: list[str], console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.live_display = self.console.is_terminal and sys.stderr.isatty()
        self.github_actions = os.environ.get("GITHUB_ACTIONS") == "true"
        self.states = {name: ("waiting", "") for name in layers}
        self.started = {name: time.monotonic() for name in layers}
        self.lock = threading.Lock()
        self.live: Live | None = None

    def __enter__(self) -> BuildProgress:
        if self.live_display:
            self.live = Live(self._render(), console=self.console, refresh_per_second=8, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.live is not None:
            self.live.update(self._render())
            self.live.__exit__(kind, exc, tb)

    def emit(self, notice: Notice) -> None:
        with self.lock:
            if notice.kind == "step" and notice.layer is not None:
                self._step(notice.layer, notice.message, notice.detail)
            elif self.github_actions:  # an annotation on the run's summary page, as cibuildwheel does
                title = f" title={notice.layer}" if notice.layer else ""
                self.console.print(f"::{notice.kind}{title}::{notice.message}", highlight=False, markup=False)
            elif self.live is None:
                prefix = "warning: " if notice.kind == "warning" else "note: "
                where = f"[{notice.layer}] " if notice.layer else ""
                self.console.print(f"{where}{prefix}{notice.message}", highlight=False, markup=False)

    def _step(self, layer: str, step: str, detail: str) -> None:
        if self.states.get(layer, ("", ""))[0] == "waiting":
            self.started[layer] = time.monotonic()
        self.states[layer] = (step, detail)
        if self.live is not None:
            self.live.update(self._render())
        elif step != "waiting":
            suffix = f" ({detail})" if detail else ""
            self.console.print(f"[{layer}] {step}{suffix}", highlight=False, markup=False)

    def detail(self, layer: str, detail: str) -> None:
        """A fast-changing detail (pip's current package): shown live, never printed as a line."""
        with self.lock:
            step = self.states[layer][0]
            self.states[layer] = (step, detail)
            if self.live is not None:
                self.live.update(self._render())

    def _render(self) -> Table:
        table = Table(show_header=False, box=None, padding=(0, 1))
        for name, (step, detail) in self.states.items():
            elapsed = time.monotonic() - self.started[name]
            table.add_row(f"[bold]{name}[/]", step, f"{elapsed:5.1f}s", detail[:70])
        return table
