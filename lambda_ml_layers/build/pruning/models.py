"""Model artifacts against pruned layers: a pickle needs the modules of the classes it names.

A handler unpickles its model at run time, so neither the trace nor a function's imports show
that a pruned scikit-learn lacks `sklearn.naive_bayes` for a pickled GaussianNB. The build reads
every artifact it can see (what `inv train-model` wrote, and each .joblib/.pkl a function ships
under services/) and the deploy the objects in the stage's model bucket (deploy/model_gate.py);
both refuse a pruned layer that lost a module one of them needs. Whole layers lose nothing, so
with them nothing is read or refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ...config.project import ProjectConfig
from ...config.prune import covers
from ...core.errors import PrunedModuleMissing
from ..artifacts import LayerBuild
from .contract import MAX_SHOWN, PrunedLayer, fix_for
from .functions import zip_modules
from .pickle_modules import Global, UnreadablePickle, pickle_globals
from .step import pruned_layer

TRAINED_MODELS = Path("build/model")  # services/training/trainer.py's default --out
SERVICES = Path("services")
ARTIFACT_SUFFIXES = (".joblib", ".pkl", ".pickle")


def is_artifact(name: str) -> bool:
    return name.lower().endswith(ARTIFACT_SUFFIXES)


def model_problems(artifact: str, needs: Iterable[Global], layer: PrunedLayer, provided: set[str]) -> list[str]:
    """One problem per module of `needs` that `layer` pruned and its zip (`provided`) lacks, naming
    the first class it holds back and the keep line to add (pure)."""
    problems: dict[str, str] = {}
    for needed in needs:
        module = needed.module
        if module not in problems and module not in provided and covers(layer.pruned_modules, module):
            problems[module] = f"{artifact} needs {needed.dotted} to load. {fix_for(module, layer)}"
    return list(problems.values())


def unreadable_problem(artifact: str, why: str) -> str:
    return (
        f"{artifact} could not be read as a pickle, so nothing can say which modules it needs from the pruned "
        f"layers: {why}. Fix: write it with joblib.dump or pickle.dump (joblib's zlib, gzip, bz2, xz and lzma "
        f"compression are read), or move it out of the function's folder if it is no model."
    )


def refusal(problems: list[str], where: str) -> PrunedModuleMissing:
    shown = problems[:MAX_SHOWN]
    more = [f"... and {len(problems) - len(shown)} more"] if len(problems) > len(shown) else []
    return PrunedModuleMissing(
        f"A model artifact needs what a pruned layer no longer has, so {where}:\n"
        + "\n".join(f"  - {p}" for p in [*shown, *more])
    )


def artifact_problems(artifacts: dict[str, bytes], layers: list[tuple[PrunedLayer, set[str]]]) -> list[str]:
    """`artifacts`: name -> its bytes; `layers`: each pruned layer with the modules its zip holds."""
    problems: list[str] = []
    for name, data in sorted(artifacts.items()):
        try:
            needs = pickle_globals(data)
        except UnreadablePickle as exc:
            problems.append(unreadable_problem(name, str(exc)))
            continue
        for layer, provided in layers:
            problems += model_problems(name, needs, layer, provided)
    return problems


def local_artifacts(root: Path) -> list[Path]:
    """What `inv train-model` wrote and what the functions ship: every model file the build can see."""
    found = [p for folder in (root / TRAINED_MODELS, root / SERVICES) if folder.is_dir() for p in folder.rglob("*")]
    return sorted(p for p in found if p.is_file() and is_artifact(p.name))


def pruned_layers(project: ProjectConfig, builds: dict[str, LayerBuild]) -> list[tuple[PrunedLayer, set[str]]]:
    """Each built layer that pruned something, with the modules its zip still holds."""
    found = []
    for name, build in sorted(builds.items()):
        pruned = pruned_layer(project.layer(name), build.steps) if name in project.layer_names else None
        if pruned is not None and pruned.pruned_modules:
            found.append((pruned, zip_modules(Path(build.zip_path), build.runtime)))
    return found


def check_model_artifacts(project: ProjectConfig, builds: dict[str, LayerBuild]) -> None:
    """Raise PrunedModuleMissing for a local model artifact a pruned layer of this build cannot load."""
    layers = pruned_layers(project, builds)
    if not layers:
        return
    artifacts = {str(p.relative_to(project.root)): p.read_bytes() for p in local_artifacts(project.root)}
    problems = artifact_problems(artifacts, layers)
    if problems:
        raise refusal(problems, "nothing was published")
