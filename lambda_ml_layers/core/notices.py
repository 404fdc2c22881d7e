"""Typed build events, in the style of cibuildwheel's logger: a step a layer reached, a notice
about the build, or a warning the user must see (a check that could not run). The progress
display and the report both read these; nothing sorts free text by how it starts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

NoticeKind = Literal["step", "notice", "warning"]
KINDS: tuple[NoticeKind, ...] = ("step", "notice", "warning")


@dataclass(frozen=True)
class Notice:
    kind: NoticeKind
    layer: str | None  # None: about the build as a whole
    message: str
    detail: str = ""  # a step's detail ("3 packages"), shown beside it

    @classmethod
    def step(cls, layer: str, message: str, detail: str = "") -> Notice:
        return cls("step", layer, message, detail)

    @classmethod
    def notice(cls, message: str, layer: str | None = None) -> Notice:
        return cls("notice", layer, message)

    @classmethod
    def warning(cls, layer: str | None, message: str) -> Notice:
        return cls("warning", layer, message)

    def text(self) -> str:
        """One line for the report and plain logs: `layer: message`."""
        return f"{self.layer}: {self.message}" if self.layer else self.message

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "layer": self.layer, "message": self.message}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Notice:
        kind = data["kind"]
        if kind not in KINDS:
            raise ValueError(f"unknown notice kind {kind!r}")
        return cls(kind, data.get("layer"), str(data["message"]))
