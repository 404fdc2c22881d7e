"""Which OSErrors are the user's write faults, and what their message names (the file-system
cases themselves run in tests/integration/test_fault_injection.py)."""

from __future__ import annotations

import errno

from lambda_ml_layers.core.write_errors import write_failure


def test_write_faults_name_the_path_and_other_os_errors_pass_through() -> None:
    full = write_failure(OSError(errno.ENOSPC, "No space left on device", "/b/tmp/x/.layer.zip.part"))
    assert full is not None and full.exit_code == 20
    assert str(full).startswith("No space left on device writing /b/tmp/x/.layer.zip.part. Nothing was published")
    copied = OSError(errno.ENOSPC, "No space left on device", "/cache/layer.zip", None, "/out/x.zip")
    assert "writing /out/x.zip" in str(write_failure(copied))  # the destination, not the source
    denied = write_failure(PermissionError(errno.EACCES, "Permission denied", "/p/layers/x/layer.toml"))
    assert str(denied).startswith("Permission denied: /p/layers/x/layer.toml.")  # may be a read: no "writing"
    assert write_failure(FileNotFoundError(errno.ENOENT, "No such file", "/x")) is None
