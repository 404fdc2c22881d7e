"""Settings every test tier shares."""

from __future__ import annotations

import signal

# The Ctrl-C tests deliver SIGINT to builds and deploys. A runner started in the background by a
# shell without job control inherits SIGINT ignored, and so would every process it starts:
# Python then never raises KeyboardInterrupt. Put Python's own handler back, so a child process
# starts with SIGINT at its default, as under a terminal or a CI runner.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
