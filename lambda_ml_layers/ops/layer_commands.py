"""`inv layer-usage` and `inv prune-layers`: the stage's layer versions, who uses them, and pruning."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from ..core.errors import ConfigError, OperationsError
from ..deploy.local_emulator import dead_emulator
from ..deploy.release_history import History
from ..deploy.stage_lock import stage_lock
from .layer_usage_rules import Decision, Usage, prune_decisions, usages
from .stage_inventory import delete_layer_version, open_stage, read_inventory, warn


def usage_lines(found: list[Usage]) -> list[str]:
    """One block per layer: each version, its status, and what references it."""
    if not found:
        return ["No version of the project's layers exists in this stage yet."]
    lines: list[str] = []
    layer = None
    for usage in found:
        if usage.version.layer_name != layer:
            layer = usage.version.layer_name
            lines += [*([""] if lines else []), layer]
        refs = [
            *(f"function {ref}" for ref in usage.function_versions),
            *(f"alias {ref}" for ref in usage.aliases),
            *(f"release {n}" for n in usage.releases),
        ]
        lines.append(f"  version {usage.version.version:>4}  {usage.status}")
        lines.extend(f"        {ref}" for ref in refs)
    return lines


def layer_usage(root: Path, stage_name: str, warn: Callable[[str], None] = warn) -> list[Usage]:
    """Each version's users; a bad release record is named (what it referenced is then not listed)."""
    opened = open_stage(root, stage_name, "inv layer-usage")
    inventory = read_inventory(opened, "inv layer-usage")
    for problem in inventory.history.problems():
        warn(problem)
    return usages(inventory.versions, inventory.functions, inventory.aliases, inventory.releases)


def refuse_unreadable_records(history: History, command: str) -> None:
    """A record that exists but cannot be read may name layer versions a rollback needs: pruning
    waits until it is fixed. A missing record is past saving, so it does not block."""
    unreadable = [bad for bad in history.bad if not bad.missing]
    if unreadable:
        listed = "\n".join(bad.message(history.bucket) for bad in unreadable)
        raise OperationsError(
            f"Cannot prune: a release record cannot be read, so the layer versions it keeps are unknown.\n{listed}\n"
            f"After the fix, run `{command}` again. Nothing was deleted."
        )


def decision_lines(decisions: list[Decision], dry_run: bool) -> list[str]:
    verb = "would delete" if dry_run else "deleted"
    lines = []
    for d in decisions:
        v = d.usage.version
        lines.append(f"  {verb if d.delete else 'kept':<12} {v.layer_name}:{v.version}  ({d.reason})")
    return lines


def prune_layers(
    root: Path, stage_name: str, keep: int, dry_run: bool, say: Callable[[str], None] = print
) -> list[Decision]:
    """Delete the unreferenced versions older than the newest `keep` of each layer; say what went
    and what stayed, and why. Holds the stage's deploy lock: a deploy may be pinning a version."""
    if keep < 1:
        raise ConfigError(
            f"--keep must be at least 1, not {keep}: the newest version of each layer is what the next "
            "deploy reuses when the layer is unchanged."
        )
    opened = open_stage(root, stage_name, "inv prune-layers")
    lock = opened.paths.deploy_dir(opened.stage.name).with_suffix(".lock")
    command = f"inv prune-layers --stage {stage_name} --keep {keep}"
    with stage_lock(lock, opened.stage.name, command):
        inventory = read_inventory(opened, "inv prune-layers")
        refuse_unreadable_records(inventory.history, command)
        found = usages(inventory.versions, inventory.functions, inventory.aliases, inventory.releases)
        decisions = prune_decisions(found, keep)
        if dry_run:
            for line in decision_lines(decisions, True):
                say(line)
            say("Dry run: nothing was deleted.")
            return decisions
        client = opened.session.client("lambda")
        done: list[Decision] = []
        for decision in decisions:
            if decision.delete:
                try:
                    delete_layer_version(client, decision.usage.version)
                except (ClientError, BotoCoreError) as exc:
                    for line in decision_lines(done, False):
                        say(line)
                    died = dead_emulator(opened.paths, opened.session.endpoint_url, command)
                    if died is not None:
                        raise died from None
                    v = decision.usage.version
                    raise OperationsError(
                        f"Deleting {v.arn} failed: {exc}\nThe versions listed above as deleted are gone; the "
                        f"others are untouched. Fix the cause and run `{command}` again."
                    ) from None
            done.append(decision)
        for line in decision_lines(done, False):
            say(line)
        deleted = sum(d.delete for d in done)
        say(f"Deleted {deleted} layer version(s); kept {len(done) - deleted}.")
        return done
