"""Which files each strip rule removes: pure, so every rule and exception is unit-tested."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase


@dataclass(frozen=True)
class StripRule:
    """Delete files that match, unless they match `keep` or the global `protect` list.

    `directories` and `files` are globs on one path component (anywhere in the tree);
    `paths` and `keep` are globs on the whole path relative to the layer root.
    """

    name: str
    why: str
    directories: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()
    # the name of the TOML file that holds it (layer.toml, defaults.toml): no folder, so the cache
    # key, which covers the rules, is the same in every checkout
    defined_in: str = ""


def _matches(rule: StripRule, path: str) -> bool:
    parts = path.split("/")
    if any(fnmatchcase(part, glob) for part in parts[:-1] for glob in rule.directories):
        return True
    if any(fnmatchcase(parts[-1], glob) for glob in rule.files):
        return True
    return any(fnmatchcase(path, glob) for glob in rule.paths)


def _protected(path: str, protect: tuple[str, ...]) -> bool:
    name = path.rsplit("/", 1)[-1]
    return any(fnmatchcase(name, glob) or fnmatchcase(path, glob) for glob in protect)


def plan_strip(paths: Iterable[str], rules: tuple[StripRule, ...], protect: tuple[str, ...]) -> dict[str, list[str]]:
    """Rule name -> the paths it removes. The first matching rule claims a path; a path that
    matches the rule's `keep` or the global `protect` list is never removed."""
    plan: dict[str, list[str]] = {rule.name: [] for rule in rules}
    for path in paths:
        if _protected(path, protect):
            continue
        for rule in rules:
            if _matches(rule, path):
                if not any(fnmatchcase(path, glob) for glob in rule.keep):
                    plan[rule.name].append(path)
                break
    return plan


def unmatched_rules(paths: Iterable[str], rules: tuple[StripRule, ...]) -> tuple[StripRule, ...]:
    """The rules whose globs match no path at all (before keep and protect): a typo, or a rule
    the packages outgrew."""
    todo = list(rules)
    for path in paths:
        todo = [rule for rule in todo if not _matches(rule, path)]
        if not todo:
            break
    return tuple(todo)
