from lambda_ml_layers.build.size_gates import LayerFacts, function_failures, layer_budget_failures
from lambda_ml_layers.config.template import FunctionFacts
from lambda_ml_layers.core.runtimes import LAMBDA_UNZIPPED_LIMIT

MB = 1_000_000


def layer(name: str, size: int, packages: dict[str, str] | None = None, runtime: str = "python3.12") -> LayerFacts:
    return LayerFacts(name, size, 100 * MB, packages or {name: "1"}, {name: size}, (runtime,), "x86_64")


def fn(layers: tuple[str, ...], code: int = 1 * MB, runtime: str = "python3.12", arch: str = "x86_64") -> FunctionFacts:
    return FunctionFacts("Predict", runtime, arch, layers, code)


def test_a_fitting_function_passes() -> None:
    layers = {"a": layer("a", 90 * MB), "b": layer("b", 90 * MB)}
    assert function_failures([fn(("a", "b"))], layers, 5 * MB) == []


def test_oversize_function_reports_the_room_aws_would_report() -> None:
    layers = {"a": layer("a", 130 * MB), "b": layer("b", 130 * MB)}
    [failure] = function_failures([fn(("a", "b"), code=3 * MB)], layers, 0)
    room = LAMBDA_UNZIPPED_LIMIT - 260 * MB
    assert f"Unzipped size must be smaller than {room:,} bytes" in failure
    assert "function Predict" in failure


def test_headroom_makes_a_near_miss_fail() -> None:
    layers = {"a": layer("a", 255 * MB)}
    assert function_failures([fn(("a",), code=2 * MB)], layers, 0) == []
    assert function_failures([fn(("a",), code=2 * MB)], layers, 10 * MB) != []


def test_every_offence_of_every_function_is_listed() -> None:
    names = tuple("abcdef")
    layers = {n: layer(n, MB, {"shared": "1"}) for n in names}
    layers["a"] = layer("a", MB, {"shared": "1"}, runtime="python3.11")
    failures = function_failures([fn(names)], layers, 0)
    assert any("6 layers; Lambda allows at most 5" in f for f in failures)
    assert any("layer a was built for python3.11" in f for f in failures)
    assert any("package shared is in a and b and c" in f for f in failures)


def test_arch_mismatch_and_missing_layer() -> None:
    failures = function_failures([fn(("a", "zz"), arch="arm64")], {"a": layer("a", MB)}, 0)
    assert any("zz, which has no built zip" in f for f in failures)
    assert any("runs on arm64 but layer a was built for x86_64" in f for f in failures)


def test_layer_over_budget_names_its_largest_packages() -> None:
    big = LayerFacts(
        "ml", 120 * MB, 100 * MB, {}, {"scipy": 89 * MB, "scikit-learn": 23 * MB}, ("python3.12",), "x86_64"
    )
    [failure] = layer_budget_failures([big, layer("ok", 10 * MB)])
    assert "20,000,000 over" in failure
    assert "scipy 89.0 MB" in failure


def test_a_layer_without_its_base_layer_or_after_it_is_refused() -> None:
    core = layer("core", MB)
    ml = LayerFacts("ml", MB, 100 * MB, {"sklearn": "1"}, {"sklearn": MB}, ("python3.12",), "x86_64", ("core",))
    layers = {"core": core, "ml": ml}
    assert function_failures([fn(("core", "ml"))], layers, 0) == []
    [missing] = function_failures([fn(("ml",))], layers, 0)
    assert "uses ml but not its base layer core" in missing
    [order] = function_failures([fn(("ml", "core"))], layers, 0)
    assert "lists ml before its base layer core" in order
