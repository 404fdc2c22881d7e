"""The deploy drill: issue 19's cases run on the local stage, as an operator meets them.

    .venv/bin/python benchmarks/deploy_drill.py [--cases NAME,NAME,...] [--list]

A copy of the checkout deploys to its own emulator (`inv local-aws`, build/local-aws.json) with the
real `sam` CLI. Each case runs real `inv` commands (signals sent to the whole process group, as a
terminal's Ctrl-C or CI's SIGTERM), then reads the stage back with boto3 (each function's `live`
alias: version, layers, memory) and asks `inv releases --json`. A row agrees when every live alias
runs what the newest record says and `inv releases` reports no drift; after the emulator is killed
it agrees when both say the stage is gone. Not in CI (tens of minutes): the cases that guard a
rule each have a test in tests/integration. Prints a table and writes build/benchmarks/deploy_drill.md.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lambda_ml_layers.core.paths import BuildPaths  # noqa: E402
from lambda_ml_layers.local.moto_server import DUMMY_CREDENTIALS  # noqa: E402
from tests.integration.test_deploy_local import copy_checkout  # noqa: E402

INV = ROOT / ".venv" / "bin" / "inv"
STAGE = "local"
STACK = "lambda-ml-layers-local"
PREDICTIONS = Path("services/predictions/predictions/handler.py")


@dataclass(frozen=True)
class Row:
    case: str
    exit: str
    documented: bool  # the exit code is the one docs/deploying.md gives for the case
    live: str
    releases: str
    agree: bool


class Drill:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if k != "LAMBDA_ML_LAYERS_LOCAL_AWS"}
        self.env |= {
            "MOTO_PYTHON": str(ROOT / ".venv" / "bin" / "python"),
            "SAM_CLI": str(ROOT / ".venv-sam" / "bin" / "sam"),
            "CHECKOV": str(ROOT / ".venv-checkov" / "bin" / "checkov"),
        }

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(BuildPaths.of(self.root).local_aws_state.read_text())
        return data

    def inv(self, *args: str, root: Path | None = None, env: dict[str, str] | None = None) -> tuple[int, str]:
        result = subprocess.run(
            [str(INV), "--search-root", str(root or self.root), *args],
            capture_output=True,
            text=True,
            env=env or self.env,
            stdin=subprocess.DEVNULL,
            timeout=1800,
        )
        return result.returncode, result.stdout + result.stderr

    def interrupted(self, signum: signal.Signals, marker: str, *args: str) -> tuple[int, str]:
        """`inv *args`, `signum` sent to its process group two seconds after the line starting with `marker`."""
        process = subprocess.Popen(
            [str(INV), "--search-root", str(self.root), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=self.env,
            start_new_session=True,
        )
        assert process.stdout is not None
        seen = []
        for line in process.stdout:
            seen.append(line)
            if line.startswith(marker):
                time.sleep(2)
                os.killpg(process.pid, signum)
                break
        rest, _ = process.communicate(timeout=1800)
        return process.returncode, "".join(seen) + rest

    def client(self, service: str) -> Any:
        import boto3  # type: ignore[import-untyped]

        return boto3.session.Session(
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
            region_name="us-east-1",
        ).client(service, endpoint_url=self.state()["endpoint_url"])

    def bucket_key(self, number: int, suffix: str = "") -> tuple[str, str]:
        s3 = self.client("s3")
        key = f"releases/{STACK}/{number:04d}{suffix}.json"
        for bucket in s3.list_buckets()["Buckets"]:
            if s3.list_objects_v2(Bucket=bucket["Name"], Prefix=key)["KeyCount"]:
                return bucket["Name"], key
        raise LookupError(key)

    def readback(self) -> tuple[str, str, bool]:
        """What runs (boto3), what `inv releases` says, and whether they agree."""
        code, listed = self.inv("releases", "--stage", STAGE, "--json")
        if code == 8:
            alive = subprocess.run(["kill", "-0", str(self.state().get("pid"))], capture_output=True).returncode == 0
            said = "exit 8: " + listed.strip().splitlines()[-1][:60]
            return ("emulator gone" if not alive else "emulator paused"), said, "emulator" in listed
        records = json.loads(_json_part(listed))
        latest = records[-1] if records else None
        lam = self.client("lambda")
        live, agree = [], latest is not None
        for logical, recorded in sorted((latest or {}).get("functions", {}).items()):
            version = lam.get_alias(FunctionName=recorded["name"], Name="live")["FunctionVersion"]
            config = lam.get_function_configuration(FunctionName=recorded["name"], Qualifier=version)
            layers = [
                ":".join(layer["Arn"].split(":")[-2:]).removeprefix(f"{STACK}-") for layer in config.get("Layers", [])
            ]
            if logical == "PredictionsFunction":
                live.append(f"v{version} {'+'.join(layers)} {config['MemorySize']}MB")
            running = (version, [layer["Arn"] for layer in config.get("Layers", [])], config["CodeSha256"])
            agree &= running == (str(recorded["version"]), recorded["layers"], recorded["code_sha256"])
        _, table = self.inv("releases", "--stage", STAGE)
        agree &= "Drift:" not in table
        flags = [word for word in ("MISSING", "UNREADABLE", "Drift:") if word in table]
        said = f"current {latest['number']} ({latest['kind']})" if latest else "none"
        return "Predictions " + (" ".join(live) or "-"), said + (f" {' '.join(flags)}" if flags else ""), agree


def _json_part(output: str) -> str:
    """The JSON array `inv releases --json` prints (problems go to stderr, after it)."""
    start = output.index("[")
    depth = 0
    for index, char in enumerate(output[start:], start):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth == 0:
            return output[start : index + 1]
    return output[start:]


def edit(path: Path, change: Callable[[str], str]) -> Callable[[], None]:
    original = path.read_text()
    path.write_text(change(original))

    def undo() -> None:
        path.write_text(original)

    return undo


def case_first_deploy(d: Drill) -> int:
    return d.inv("deploy", "--stage", STAGE)[0]


def case_config_change(d: Drill) -> int:
    def more_memory(text: str) -> str:
        start = text.index("  PredictionsFunction:\n")
        return text[:start] + text[start:].replace("      MemorySize: 1769", "      MemorySize: 2048", 1)

    undo = edit(d.root / "infra" / "template.yaml", more_memory)
    code = d.inv("deploy", "--stage", STAGE)[0]
    undo()
    return code


def _deploy_interrupted(signum: signal.Signals, marker: str) -> Callable[[Drill], int]:
    def case(d: Drill) -> int:
        undo = edit(d.root / PREDICTIONS, lambda t: t + f"\n# drill {signum.name} at {marker}\n")
        code = d.interrupted(signum, marker, "deploy", "--stage", STAGE)[0]
        undo()
        return code

    return case


def _rollback_interrupted(signum: signal.Signals, marker: str) -> Callable[[Drill], int]:
    def case(d: Drill) -> int:
        return d.interrupted(signum, marker, "rollback", "--stage", STAGE, "--to", "1", "--yes")[0]

    return case


def case_redeploy(d: Drill) -> int:
    return d.inv("deploy", "--stage", STAGE)[0]


def case_paused_emulator(d: Drill) -> int:
    pid = d.state()["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        return d.inv("releases", "--stage", STAGE)[0]
    finally:
        os.kill(pid, signal.SIGCONT)


def case_two_operators(d: Drill) -> int:
    other = copy_checkout(d.root.parent / "second")
    env = d.env | {"LAMBDA_ML_LAYERS_LOCAL_AWS": d.state()["endpoint_url"]}
    for root in (d.root, other):
        (root / PREDICTIONS).write_text((root / PREDICTIONS).read_text() + f"\n# operator {root.name}\n")
    processes = [
        subprocess.Popen(
            [str(INV), "--search-root", str(root), "deploy", "--stage", STAGE],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            env=d.env if root == d.root else env,
        )
        for root in (d.root, other)
    ]
    codes = [p.wait(timeout=1800) for p in processes]
    return max(codes)


def case_tampered_record(d: Drill) -> int:
    s3 = d.client("s3")
    bucket, key = d.bucket_key(1)
    original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    s3.put_object(Bucket=bucket, Key=key, Body=original.replace(b'"number": 1', b'"number": 9'))
    try:
        return d.inv("rollback", "--stage", STAGE, "--to", "1", "--yes")[0]
    finally:
        s3.put_object(Bucket=bucket, Key=key, Body=original)


def case_tampered_template(d: Drill) -> int:
    s3 = d.client("s3")
    bucket, key = d.bucket_key(1, ".template")
    original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    # A key the template lacks: a duplicate one would leave the parsed template, and its digest, as it was.
    s3.put_object(Bucket=bucket, Key=key, Body=original.replace(b"{", b'{"EditedAfterTheRelease": true,', 1))
    try:
        return d.inv("rollback", "--stage", STAGE, "--to", "1", "--yes")[0]
    finally:
        s3.put_object(Bucket=bucket, Key=key, Body=original)


def case_deleted_latest_record(d: Drill) -> int:
    """The newest record deleted: deploy refuses; a rollback to a named release is the way on."""
    _, listed = d.inv("releases", "--stage", STAGE, "--json")
    latest = json.loads(_json_part(listed))[-1]["number"]
    s3 = d.client("s3")
    bucket, key = d.bucket_key(latest)
    s3.delete_object(Bucket=bucket, Key=key)
    refused = d.inv("deploy", "--stage", STAGE)[0]
    return refused if refused != 16 else d.inv("rollback", "--stage", STAGE, "--to", str(latest - 1), "--yes")[0]


def case_odd_inputs(d: Drill) -> int:
    codes = [
        d.inv("deploy", "--stage", "../../etc")[0],
        d.inv("rollback", "--stage", STAGE, "--to", "²")[0],
        d.inv("rollback", "--stage", STAGE, "--to", "0")[0],
        d.inv("releases", "--stage", "nosuchstage")[0],
    ]
    return max(codes) if all(code == 2 for code in codes) else -1


def case_killed_emulator(d: Drill) -> int:
    os.kill(d.state()["pid"], signal.SIGKILL)
    time.sleep(1)
    return d.inv("rollback", "--stage", STAGE, "--yes")[0]


SIGINT, SIGTERM = signal.SIGINT, signal.SIGTERM
# Each case and the exit codes docs/deploying.md documents for it.
CASES: dict[str, tuple[Callable[[Drill], int], tuple[int, ...]]] = {
    "first deploy": (case_first_deploy, (0,)),
    "config change (MemorySize)": (case_config_change, (0,)),
    "deploy: Ctrl-C in sam deploy": (_deploy_interrupted(SIGINT, "==> sam deploy"), (130,)),
    "deploy: SIGTERM in sam deploy": (_deploy_interrupted(SIGTERM, "==> sam deploy"), (130,)),
    "deploy: Ctrl-C in verification": (_deploy_interrupted(SIGINT, "==> verify the stage"), (130,)),
    "deploy: SIGTERM in verification": (_deploy_interrupted(SIGTERM, "==> verify the stage"), (130,)),
    "rollback: Ctrl-C in sam deploy": (_rollback_interrupted(SIGINT, "==> sam deploy of release"), (130,)),
    "rollback: SIGTERM in sam deploy": (_rollback_interrupted(SIGTERM, "==> sam deploy of release"), (130,)),
    "rollback: Ctrl-C in verification": (_rollback_interrupted(SIGINT, "==> verify release"), (130,)),
    "rollback: SIGTERM in verification": (_rollback_interrupted(SIGTERM, "==> verify release"), (130,)),
    "redeploy the checkout": (case_redeploy, (0,)),
    "paused emulator (SIGSTOP)": (case_paused_emulator, (8,)),
    "two operators at once": (case_two_operators, (0, 15)),
    "tampered record 1: rollback to it": (case_tampered_record, (16,)),
    "tampered template 1: rollback to it": (case_tampered_template, (16,)),
    "deleted latest record": (case_deleted_latest_record, (0,)),
    "odd names and inputs": (case_odd_inputs, (2,)),
    "killed emulator (SIGKILL)": (case_killed_emulator, (8,)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", help="comma-separated case names (default: all, in order)")
    parser.add_argument("--list", action="store_true", help="list the cases and stop")
    args = parser.parse_args()
    if args.list:
        print("\n".join(CASES))
        return
    chosen = [name.strip() for name in args.cases.split(",")] if args.cases else list(CASES)
    unknown = [name for name in chosen if name not in CASES]
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)}; see --list")
    rows = []
    with tempfile.TemporaryDirectory(prefix="deploy-drill-") as tmp:
        drill = Drill(copy_checkout(Path(tmp) / "checkout"))
        try:
            if drill.inv("local-aws")[0] != 0:
                sys.exit("Could not start the checkout's emulator (`inv local-aws`).")
            if chosen[0] != "first deploy":
                chosen.insert(0, "first deploy")
            for name in chosen:
                started = time.monotonic()
                case, documented = CASES[name]
                code = case(drill)
                live, said, agree = drill.readback()
                rows.append(Row(name, str(code), code in documented, live, said, agree))
                print(
                    f"{name}: exit {code} (documented {documented}), {live}; releases: {said}; "
                    f"agree {'yes' if agree else 'NO'} "
                    f"({time.monotonic() - started:.0f}s)",
                    flush=True,
                )
        finally:
            drill.inv("local-aws", "--stop")
    lines = ["| case | exit | live (boto3) | `inv releases` | agree |", "| --- | --- | --- | --- | --- |"]
    lines += [
        f"| {r.case} | {r.exit}{'' if r.documented else ' (not as documented)'} | {r.live} | {r.releases} | "
        f"{'yes' if r.agree else 'NO'} |"
        for r in rows
    ]
    table = "\n".join(lines)
    print(table)
    out = ROOT / "build" / "benchmarks" / "deploy_drill.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + "\n")
    sys.exit(0 if all(r.agree and r.documented for r in rows) else 1)


if __name__ == "__main__":
    main()
