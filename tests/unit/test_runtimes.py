from lambda_ml_layers.core.runtimes import RUNTIMES, platform_tags


def test_python312_accepts_every_manylinux_up_to_amazon_linux_2023_glibc() -> None:
    tags = platform_tags(RUNTIMES["python3.12"], "x86_64")
    assert tags[0] == "manylinux_2_34_x86_64"
    assert "manylinux_2_28_x86_64" in tags
    assert "manylinux2014_x86_64" in tags
    assert "manylinux1_x86_64" in tags
    assert "manylinux_2_35_x86_64" not in tags


def test_python311_stops_at_amazon_linux_2_glibc() -> None:
    tags = platform_tags(RUNTIMES["python3.11"], "x86_64")
    assert tags[0] == "manylinux_2_26_x86_64"
    assert "manylinux_2_28_x86_64" not in tags


def test_arm64_uses_aarch64_wheels_only() -> None:
    tags = platform_tags(RUNTIMES["python3.13"], "arm64")
    assert all(tag.endswith("_aarch64") for tag in tags)
    assert "manylinux2014_aarch64" in tags
