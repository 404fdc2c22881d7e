"""CUDA-only wheels in a lock: flagged with what pulls them and the CPU variant where one exists."""

from lambda_ml_layers.config.cuda_wheels import CudaPull, cuda_pulls, cuda_warnings, is_cuda_only
from lambda_ml_layers.config.locks import parse_lock

H = "--hash=sha256:" + "0" * 64

# As pip-compile writes a layer of xgboost, lightgbm and torch (shortened): both forms of `# via`.
LOCK = f"""#
#    nox -s lock
#
lightgbm==4.6.0 \\
    {H}
    # via -r requirements.in
numpy==2.3.4 \\
    {H}
    # via
    #   -c ../resolution.txt
    #   lightgbm
    #   xgboost
nvidia-cublas-cu12==12.8.4.1 \\
    {H}
    # via
    #   nvidia-cudnn-cu12
    #   torch
nvidia-cudnn-cu12==9.10.2.21 \\
    {H}
    # via torch
nvidia-nccl-cu12==2.27.3 \\
    {H}
    # via
    #   -c ../resolution.txt
    #   xgboost
torch==2.9.0 \\
    {H}
    # via -r requirements.in
triton==3.5.0 \\
    {H}
    # via torch
xgboost==3.1.1 \\
    {H}
    # via -r requirements.in
"""


def test_cuda_only_names() -> None:
    assert all(map(is_cuda_only, ["nvidia-nccl-cu13", "NVIDIA_cublas_cu12", "cupy-cuda12x", "triton"]))
    assert not any(map(is_cuda_only, ["xgboost", "xgboost-cpu", "numpy", "cupy", "lightgbm"]))


def test_each_cuda_wheel_is_traced_to_the_package_that_pulls_it() -> None:
    pulls = cuda_pulls(parse_lock(LOCK))
    assert pulls == [
        CudaPull("torch", ("nvidia-cublas-cu12==12.8.4.1", "nvidia-cudnn-cu12==9.10.2.21", "triton==3.5.0")),
        CudaPull("xgboost", ("nvidia-nccl-cu12==2.27.3",)),
    ]


def test_the_warning_names_the_puller_and_the_cpu_variant_where_one_exists() -> None:
    torch, xgboost = cuda_warnings("gbm", parse_lock(LOCK))
    assert "nvidia-nccl-cu12==2.27.3 (pulled in by xgboost)" in xgboost
    assert "put xgboost-cpu in layers/gbm/requirements.in instead of xgboost" in xgboost
    assert "exclude-a-transitive-dependency" in xgboost
    assert "pulled in by torch" in torch and "no CPU-only variant of torch is known" in torch


def test_a_cuda_wheel_listed_directly_is_flagged_and_a_clean_lock_is_not() -> None:
    direct = f"cupy-cuda12x==13.6.0 \\\n    {H}\n    # via -r requirements.in\n"
    [warning] = cuda_warnings("gpu", parse_lock(direct))
    assert "cupy-cuda12x==13.6.0 (listed in layers/gpu/requirements.in)" in warning
    clean = f"numpy==2.3.4 \\\n    {H}\n    # via -r requirements.in\n"
    assert cuda_warnings("core", parse_lock(clean)) == []
