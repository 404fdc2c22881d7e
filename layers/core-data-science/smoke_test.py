"""Smoke test of core-data-science, run by `nox -s layer_tests` with only the layers on sys.path."""

import zoneinfo

import dateutil.parser
import numpy as np
import pandas as pd

# Only the layer's tzdata package may answer: the runtime's OS may have no zoneinfo files.
zoneinfo.reset_tzpath(to=[])
frame = pd.DataFrame(
    {
        "when": pd.date_range("2026-03-28", periods=4, freq="D", tz="Europe/Berlin"),
        "store": ["a", "b", "a", "b"],
        "sales": np.array([10.0, 20.0, 30.0, np.nan]),
    }
)
assert frame["when"].dt.tz_convert("UTC").dt.hour.tolist() == [23, 23, 22, 22], "DST change on 2026-03-29"
summary = frame.groupby("store")["sales"].agg(["sum", "count"])
assert summary.loc["a", "sum"] == 40.0 and summary.loc["b", "count"] == 1
assert frame.pivot_table(index="store", values="sales", aggfunc="mean").shape == (2, 1)
assert dateutil.parser.isoparse("2026-11-26T10:00:00+01:00").utcoffset().total_seconds() == 3600
assert np.linalg.solve(np.array([[2.0, 0.0], [0.0, 4.0]]), np.array([2.0, 8.0])).tolist() == [1.0, 2.0]
print("core-data-science smoke test passed")
