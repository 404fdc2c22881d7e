"""Numeric command-line options, parsed and range-checked before anything runs.

Invoke hands options over as text (or as whatever type their default has, and then a bad
value ends in a traceback), so each numeric option arrives here as text and leaves as a
checked number or a ConfigError naming the option, the value and the allowed range. A
value outside the range is never clamped: `--headroom-mb -5` silently switched the
function gate off, and 1e30 made the gate report nonsense."""

from __future__ import annotations

import math

from .errors import ConfigError, collect
from .runtimes import LAMBDA_UNZIPPED_LIMIT, MB

DEFAULT_JOBS = 2
MAX_JOBS = 32  # far above what a machine's cores and memory carry; a typo guard, not a tuning limit
DEFAULT_HEADROOM_MB = 5.0


def jobs_problem(jobs: int) -> str | None:
    """Why `jobs` is not a usable number of layers built at once (None: it is)."""
    if isinstance(jobs, int) and not isinstance(jobs, bool) and 1 <= jobs <= MAX_JOBS:
        return None
    return f"--jobs must be a whole number from 1 to {MAX_JOBS}, not {jobs!r}."


def headroom_problem(headroom_bytes: int) -> str | None:
    """Why `headroom_bytes` is not a usable room to keep free under Lambda's limit (None: it is).
    NaN fails every comparison, so it lands here too."""
    if 0 <= headroom_bytes <= LAMBDA_UNZIPPED_LIMIT:
        return None
    return (
        f"--headroom-mb must be from 0 to {LAMBDA_UNZIPPED_LIMIT / MB:g} (Lambda's limit of "
        f"{LAMBDA_UNZIPPED_LIMIT:,} bytes per function), not {headroom_bytes / MB:g} MB."
    )


def parse_jobs(text: str | None) -> int:
    """`--jobs` as text -> layers built at once."""
    if text is None:
        return DEFAULT_JOBS
    try:
        jobs = int(text.strip())
    except ValueError:
        raise ConfigError(f"--jobs must be a whole number from 1 to {MAX_JOBS}, not {text!r}.") from None
    problem = jobs_problem(jobs)
    if problem:
        raise ConfigError(problem)
    return jobs


def parse_headroom_mb(text: str | None) -> int:
    """`--headroom-mb` as text (MB = 1,000,000 bytes) -> bytes."""
    if text is None:
        return int(DEFAULT_HEADROOM_MB * MB)
    limit_mb = LAMBDA_UNZIPPED_LIMIT / MB
    refused = f"--headroom-mb must be a number of MB from 0 to {limit_mb:g} (Lambda's whole limit), not {text!r}."
    try:
        value = float(text.strip())
    except ValueError:
        raise ConfigError(refused) from None
    if not math.isfinite(value) or not 0 <= value <= limit_mb:
        raise ConfigError(refused)
    return round(value * MB)  # round, not int: 262.143 * MB is 262142999.99999997


def parse_keep(text: str) -> int:
    """`inv prune-layers --keep` as text -> versions kept per layer (the command refuses < 1)."""
    try:
        return int(str(text).strip())
    except ValueError:
        raise ConfigError(f"--keep must be a whole number of versions to keep per layer, not {text!r}.") from None


def parse_release_number(text: str | None, stage: str) -> int | None:
    """`inv rollback --to` as text -> a release number (None: the default, the one before the current).
    Only ASCII digits: str.isdigit() accepts '²' and int() then fails."""
    if text is None:
        return None
    value = str(text).strip()
    listing = f"see `inv releases --stage {stage}`"
    if not (value.isascii() and value.isdigit()):
        raise ConfigError(f"--to must be a release number like 3 ({listing}), not {text!r}.")
    if int(value) < 1:
        raise ConfigError(f"--to {text}: release numbers start at 1 ({listing}).")
    return int(value)


def parse_build_options(jobs: str | None, headroom_mb: str | None) -> tuple[int, int]:
    """(jobs, headroom bytes) of `inv build-layers`; every bad option in one error."""
    problems: list[str] = []
    parsed: list[int] = []
    for parse, text in ((parse_jobs, jobs), (parse_headroom_mb, headroom_mb)):
        try:
            parsed.append(parse(text))
        except ConfigError as exc:
            problems.append(str(exc))
    collect(problems, ConfigError, "Invalid option:" if len(problems) == 1 else "Invalid options:")
    return parsed[0], parsed[1]


def check_build_numbers(jobs: int, headroom_bytes: int) -> None:
    """The same ranges for callers of the engine that skip the command line (tests, benchmarks)."""
    problems = [p for p in (jobs_problem(jobs), headroom_problem(headroom_bytes)) if p]
    collect(problems, ConfigError, "Invalid build request:")
