"""The size and consistency rules a build must pass before anything is deployed (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config.template import FunctionFacts
from ..core.runtimes import LAMBDA_MAX_LAYERS, LAMBDA_UNZIPPED_LIMIT, MB


@dataclass(frozen=True)
class LayerFacts:
    name: str
    unzipped_bytes: int
    budget_bytes: int
    packages: dict[str, str]  # canonical name -> version
    package_bytes: dict[str, int]  # largest first
    runtimes: tuple[str, ...]
    arch: str
    base_layers: tuple[str, ...] = ()  # every layer below this one, in extraction order
    not_stripped: str = ""  # why its shared objects were left unstripped (a missing tool), if they were


@dataclass(frozen=True)
class FunctionTotal:
    name: str
    code_bytes: int
    layer_bytes: int
    limit_bytes: int
    headroom_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.code_bytes + self.layer_bytes

    @property
    def room_for_code(self) -> int:
        """What AWS would report as 'Unzipped size must be smaller than N bytes'."""
        return self.limit_bytes - self.layer_bytes


def _largest(package_bytes: dict[str, int], count: int = 3) -> str:
    top = sorted(package_bytes.items(), key=lambda item: -item[1])[:count]
    return ", ".join(f"{name} {size / MB:.1f} MB" for name, size in top)


EXCLUDE_HOWTO = "docs/updating-layers.md#exclude-a-transitive-dependency"


def layer_budget_failures(layers: list[LayerFacts], known: dict[str, LayerFacts] | None = None) -> list[str]:
    """Each layer over its budget. One that, with the base layers every function using it must
    also carry (sizes from `known`, else from `layers`), is over Lambda's own limit is said never
    to fit: no budget_mb can help it, so a bigger budget is not offered as the fix."""
    everything = {layer.name: layer for layer in layers} | (known or {})
    failures = []
    for layer in layers:
        bases = [everything[name] for name in layer.base_layers if name in everything]
        with_bases = layer.unzipped_bytes + sum(base.unzipped_bytes for base in bases)
        if with_bases > LAMBDA_UNZIPPED_LIMIT:
            carried = "".join(f" + base layer {base.name} {base.unzipped_bytes:,}" for base in bases)
            total = f" = {with_bases:,}" if bases else ""
            failures.append(
                f"layer {layer.name}: {layer.unzipped_bytes:,} bytes unzipped{carried}{total}, over Lambda's "
                f"limit of {LAMBDA_UNZIPPED_LIMIT:,} bytes for a function and all its layers: it can never "
                f"fit, whatever its budget (largest: {_largest(layer.package_bytes)}). Fix: take the largest "
                f"packages out of layers/{layer.name}/requirements.in, or exclude the dependency that pulls "
                f"them (a CUDA-only wheel often: see {EXCLUDE_HOWTO}), or split the layer so no function "
                f"needs all of it."
            )
        elif layer.unzipped_bytes > layer.budget_bytes and layer.not_stripped:
            over = layer.unzipped_bytes - layer.budget_bytes
            # Unstripped libraries are the cause then, not the rules: a bigger budget would hide it.
            failures.append(
                f"layer {layer.name}: {layer.unzipped_bytes:,} bytes unzipped, {over:,} over its budget of "
                f"{layer.budget_bytes:,}, with its shared objects not stripped on this machine: "
                f"{layer.not_stripped}. Fix that first (stripping saves about a tenth of a compiled "
                f"layer), then build again."
            )
        elif layer.unzipped_bytes > layer.budget_bytes:
            over = layer.unzipped_bytes - layer.budget_bytes
            failures.append(
                f"layer {layer.name}: {layer.unzipped_bytes:,} bytes unzipped, {over:,} over its "
                f"budget of {layer.budget_bytes:,} (largest: {_largest(layer.package_bytes)}). "
                f"Fix: add strip rules or move packages out in layers/{layer.name}/layer.toml, "
                f"or raise budget_mb there if the plan allows."
            )
    return failures


def function_totals(
    functions: list[FunctionFacts], layers: dict[str, LayerFacts], headroom_bytes: int
) -> list[FunctionTotal]:
    return [
        FunctionTotal(
            name=fn.name,
            code_bytes=fn.code_bytes,
            layer_bytes=sum(layers[name].unzipped_bytes for name in fn.layers if name in layers),
            limit_bytes=LAMBDA_UNZIPPED_LIMIT,
            headroom_bytes=headroom_bytes,
        )
        for fn in functions
    ]


def function_failures(functions: list[FunctionFacts], layers: dict[str, LayerFacts], headroom_bytes: int) -> list[str]:
    """Every way each function breaks Lambda's rules with its layers, all listed at once."""
    failures = []
    totals = {t.name: t for t in function_totals(functions, layers, headroom_bytes)}
    for fn in functions:
        where = f"function {fn.name}"
        missing = [name for name in fn.layers if name not in layers]
        if missing:
            failures.append(
                f"{where}: uses {', '.join(missing)}, which has no built zip for {fn.runtime}/{fn.arch}. "
                f"Fix: inv build-layers --runtime {fn.runtime} --arch {fn.arch}."
            )
        if len(fn.layers) > LAMBDA_MAX_LAYERS:
            failures.append(
                f"{where}: {len(fn.layers)} layers; Lambda allows at most {LAMBDA_MAX_LAYERS}. "
                f"Fix: merge layers in infra/template.yaml."
            )
        total = totals[fn.name]
        allowed = LAMBDA_UNZIPPED_LIMIT - headroom_bytes
        if total.total_bytes > allowed:
            parts = [f"code {fn.code_bytes:,}"] + [
                f"{name} {layers[name].unzipped_bytes:,} ({_largest(layers[name].package_bytes, 2)})"
                for name in fn.layers
                if name in layers
            ]
            failures.append(
                f"{where}: {total.total_bytes:,} bytes unzipped with its layers, over "
                f"{allowed:,} (Lambda's {LAMBDA_UNZIPPED_LIMIT:,} less {headroom_bytes:,} headroom). "
                f"Its layers leave {total.room_for_code:,} bytes for code: AWS would say 'Unzipped "
                f"size must be smaller than {total.room_for_code:,} bytes'. Parts: {'; '.join(parts)}. "
                f"Fix: shrink the largest layer or drop a layer this function does not import."
                + (
                    f" Its layers alone are over Lambda's limit: no code fits beside them, "
                    f"whatever the headroom (see {EXCLUDE_HOWTO})."
                    if total.layer_bytes > LAMBDA_UNZIPPED_LIMIT
                    else ""
                )
            )
        for name in fn.layers:
            layer = layers.get(name)
            if layer is None:
                continue
            if fn.runtime not in layer.runtimes:
                failures.append(
                    f"{where}: runs {fn.runtime} but layer {name} was built for "
                    f"{', '.join(layer.runtimes)}; compiled extensions work on one Python minor "
                    f"version only. Fix: build the layers with --runtime {fn.runtime}."
                )
            if fn.arch != layer.arch:
                failures.append(
                    f"{where}: runs on {fn.arch} but layer {name} was built for {layer.arch}. "
                    f"Fix: build with --arch {fn.arch}."
                )
        for name in fn.layers:
            layer = layers.get(name)
            for base in layer.base_layers if layer else ():
                if base not in fn.layers:
                    failures.append(
                        f"{where}: uses {name} but not its base layer {base}, which provides packages {name} "
                        f"imports. Fix: add the {base} layer before {name} in its Layers in infra/template.yaml."
                    )
                elif fn.layers.index(base) > fn.layers.index(name):
                    failures.append(
                        f"{where}: lists {name} before its base layer {base}; Lambda extracts layers in order. "
                        f"Fix: put {base} first in its Layers in infra/template.yaml."
                    )
        owners: dict[str, list[str]] = {}
        for name in fn.layers:
            for package in layers[name].packages if name in layers else {}:
                owners.setdefault(package, []).append(name)
        for package, in_layers in sorted(owners.items()):
            if len(in_layers) > 1:
                failures.append(
                    f"{where}: package {package} is in {' and '.join(in_layers)}; in /opt the later "
                    f"layer's files overwrite the earlier one's and the versions mix. Fix: list "
                    f"{in_layers[0]} in base_layers of layers/{in_layers[-1]}/layer.toml."
                )
    return failures
