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


def test_a_layer_over_lambdas_limit_can_never_fit_and_no_bigger_budget_is_offered() -> None:
    # xgboost as a new user first locks it: the CUDA wheel it pulls is most of the layer.
    huge = LayerFacts(
        "gbm",
        300 * MB,
        250 * MB,
        {},
        {"nvidia-nccl-cu12": 212 * MB, "xgboost": 60 * MB, "numpy": 28 * MB},
        ("python3.12",),
        "x86_64",
    )
    [failure] = layer_budget_failures([huge])
    assert f"over Lambda's limit of {LAMBDA_UNZIPPED_LIMIT:,} bytes" in failure
    assert "can never fit" in failure
    assert "nvidia-nccl-cu12 212.0 MB" in failure
    assert "raise budget_mb" not in failure
    assert "exclude-a-transitive-dependency" in failure


def test_a_layer_under_the_limit_alone_but_over_it_with_its_base_layers_can_never_fit() -> None:
    core = layer("core", 100 * MB)
    ml = LayerFacts("ml", 170 * MB, 200 * MB, {}, {"scipy": 170 * MB}, ("python3.12",), "x86_64", ("core",))
    [failure] = layer_budget_failures([ml], {"core": core, "ml": ml})
    assert "base layer core 100,000,000 = 270,000,000" in failure
    assert "can never fit" in failure
    assert layer_budget_failures([ml], {"ml": ml}) == []  # its base unknown: nothing to add


def test_a_function_whose_layers_alone_pass_the_limit_is_told_no_code_fits() -> None:
    layers = {"a": layer("a", 140 * MB), "b": layer("b", 130 * MB)}
    [failure] = function_failures([fn(("a", "b"))], layers, 0)
    assert "Its layers alone are over Lambda's limit" in failure
    [near] = function_failures([fn(("a",), code=125 * MB)], {"a": layer("a", 140 * MB)}, 0)
    assert "layers alone" not in near


def test_a_layer_over_budget_with_unstripped_objects_names_the_missing_tool_not_the_rules() -> None:
    over = LayerFacts("ml", 122_600_000, 100 * MB, {}, {"scikit-learn": 28 * MB}, ("python3.13",), "arm64")
    unstripped = LayerFacts(**{**over.__dict__, "not_stripped": "no aarch64-linux-gnu-strip on PATH"})
    [plain] = layer_budget_failures([over])
    [message] = layer_budget_failures([unstripped])
    assert "add strip rules" in plain
    assert "not stripped on this machine: no aarch64-linux-gnu-strip on PATH" in message
    assert "add strip rules" not in message and "raise budget_mb" not in message
