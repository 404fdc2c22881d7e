"""Which program a pid is, read from /proc: so a pid written to a file long ago is signalled only
while it is still the same process (pids are reused; a recorded pid may now be anyone's shell).

Standard library only, like moto_server.py. Linux only: without /proc nothing can be proved, and
callers treat that as "not the same process".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
STOPPED_STATES = ("T", "t")  # stopped by a signal (SIGSTOP, Ctrl-Z) / by a debugger


@dataclass(frozen=True)
class ProcessIdentity:
    pid: int
    command: tuple[str, ...]  # its argv, from /proc/<pid>/cmdline
    start_ticks: int  # /proc/<pid>/stat field 22: when it started, in clock ticks after boot
    boot_id: str  # start_ticks count from this boot only
    state: str  # R running, S sleeping, T stopped, Z zombie, ...
    group: int  # its process group

    def same_process(self, command: object, start_ticks: object, boot_id: object) -> bool:
        """Whether this is the process recorded with (command, start_ticks, boot_id)."""
        return (
            isinstance(command, list)
            and tuple(command) == self.command
            and start_ticks == self.start_ticks
            and boot_id == self.boot_id
        )

    @property
    def stopped(self) -> bool:
        return self.state in STOPPED_STATES

    @property
    def shown(self) -> str:
        return " ".join(self.command) or "(no command line)"


def boot_id(proc: Path = PROC) -> str:
    try:
        return (proc / "sys" / "kernel" / "random" / "boot_id").read_text().strip()
    except OSError:
        return ""


def parse_stat(text: str) -> tuple[str, int, int]:
    """(state, process group, start ticks) of a /proc/<pid>/stat line. The command name (field 2)
    is in parentheses and may itself hold spaces and parentheses, so fields count from the last ')'."""
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[2]), int(fields[19])


def process_identity(pid: int, proc: Path = PROC) -> ProcessIdentity | None:
    """The running process `pid` (None: no such process, a zombie, or no /proc to read)."""
    if pid <= 0:
        return None
    try:
        stat = (proc / str(pid) / "stat").read_text()
        raw = (proc / str(pid) / "cmdline").read_bytes()
        state, group, start_ticks = parse_stat(stat)
    except (OSError, ValueError, IndexError):
        return None
    if state == "Z":
        return None
    command = tuple(part.decode(errors="replace") for part in raw.split(b"\0")[:-1])
    return ProcessIdentity(pid, command, start_ticks, boot_id(proc), state, group)
