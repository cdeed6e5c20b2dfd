"""`python -m dataload.parent_death`: the launcher of local shard workers and their shards."""

from __future__ import annotations

import signal
import subprocess
import sys

SHOW_SIGINT = "import signal; print(signal.getsignal(signal.SIGINT))"


def test_a_command_started_where_ctrl_c_is_ignored_gets_it_back() -> None:
    # As a shell's background job, nohup or a scheduler start it; a Prefect worker stops on
    # SIGTERM by sending itself SIGINT, and with SIGINT ignored it never stopped.
    launched = subprocess.run(
        [sys.executable, "-m", "dataload.parent_death", "-", sys.executable, "-c", SHOW_SIGINT],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )

    assert launched.returncode == 0, launched.stderr
    assert "default_int_handler" in launched.stdout, launched.stdout
