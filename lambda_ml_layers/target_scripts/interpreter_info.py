"""Print this interpreter's real path, its X.Y version and its full version, one per line."""

import sys

print(sys.executable)
print(f"{sys.version_info[0]}.{sys.version_info[1]}")
print(sys.version.replace("\n", " "))
