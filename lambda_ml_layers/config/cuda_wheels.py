"""CUDA-only wheels in a layer's lock (pure: lock in, warnings out).

Lambda has no GPU, so a wheel that only carries CUDA libraries is dead weight: `xgboost` on
Linux x86_64 requires `nvidia-nccl-cu12` (or -cu13), some 200 MB, enough to put a layer past Lambda's
262,144,000-byte limit on its own. pip cannot leave one dependency out; the fix is usually
the parent's CPU variant, so the warning names the package that pulls the wheel in (from
pip-compile's `# via` comments) and that variant where one is known.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.utils import canonicalize_name

from .locks import LOCK_COMMAND, LockedPackage

HOWTO = "docs/updating-layers.md#exclude-a-transitive-dependency"

# Distributions that hold nothing but GPU code or CUDA libraries (canonical names).
CUDA_PREFIXES = ("nvidia-", "cupy-cuda", "jax-cuda", "cuda-")
CUDA_NAMES = frozenset({"triton", "tensorrt", "tensorrt-cu12", "tensorrt-cu12-libs", "tensorrt-cu12-bindings"})

# Parent -> a distribution of the same import package built without the CUDA requirement.
CPU_VARIANTS: dict[str, str] = {
    "xgboost": "xgboost-cpu",
    "tensorflow": "tensorflow-cpu",
}


@dataclass(frozen=True)
class CudaPull:
    """The CUDA-only wheels one package (or requirements.in itself) brings into a lock."""

    pulled_by: str  # a canonical package name, or "requirements.in" when listed there directly
    wheels: tuple[str, ...]  # "name==version", sorted

    @property
    def cpu_variant(self) -> str | None:
        return CPU_VARIANTS.get(self.pulled_by)


def is_cuda_only(name: str) -> bool:
    name = canonicalize_name(name)
    return name in CUDA_NAMES or name.startswith(CUDA_PREFIXES)


def _parents(package: LockedPackage, lock: dict[str, LockedPackage]) -> tuple[list[str], bool]:
    """(the locked packages that require `package`, whether requirements.in lists it)."""
    names = [canonicalize_name(via.split()[0]) for via in package.via if via and not via.startswith("-")]
    direct = any(via.startswith("-r ") for via in package.via)
    return [name for name in names if name in lock], direct


def cuda_pulls(lock: dict[str, LockedPackage]) -> list[CudaPull]:
    """Each package that brings CUDA-only wheels into the lock, walking up through CUDA wheels
    that pull others (nvidia-cudnn requires nvidia-cublas) to the first one that is not."""
    found: dict[str, set[str]] = {}
    for package in lock.values():
        if not is_cuda_only(package.name):
            continue
        seen, todo = {package.name}, [package.name]
        while todo:
            parents, direct = _parents(lock[todo.pop()], lock)
            if direct:
                found.setdefault("requirements.in", set()).add(f"{package.name}=={package.version}")
            for parent in parents:
                if parent in seen:
                    continue
                seen.add(parent)
                if is_cuda_only(parent):
                    todo.append(parent)
                else:
                    found.setdefault(parent, set()).add(f"{package.name}=={package.version}")
    return [CudaPull(puller, tuple(sorted(wheels))) for puller, wheels in sorted(found.items())]


def cuda_warnings(layer: str, lock: dict[str, LockedPackage]) -> list[str]:
    """One warning per package that pulls CUDA-only wheels into `layer`'s lock, with its fix
    (the caller says which layer: a build notice carries it, the lock check names the lock)."""
    warnings = []
    where = f"layers/{layer}/requirements.in"
    for pull in cuda_pulls(lock):
        wheels = ", ".join(pull.wheels)
        if pull.pulled_by == "requirements.in":
            source, fix = f"listed in {where}", f"remove them from {where}"
        elif pull.cpu_variant:
            source = f"pulled in by {pull.pulled_by}"
            fix = (
                f"put {pull.cpu_variant} in {where} instead of {pull.pulled_by} (the same import, "
                f"without the CUDA requirement), then `{LOCK_COMMAND}`"
            )
        else:
            source = f"pulled in by {pull.pulled_by}"
            fix = (
                f"no CPU-only variant of {pull.pulled_by} is known; pin a release of it that does not "
                f"require them, or leave it out of the layer"
            )
        warnings.append(
            f"CUDA-only wheels {wheels} ({source}) are dead weight on Lambda, which has no GPU. "
            f"Fix: {fix} (see {HOWTO})."
        )
    return warnings
