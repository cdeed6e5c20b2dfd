"""Run a command that ends with the process that started it:

    python -m dataload.parent_death <parent pid, or - for the current parent> <command> [args...]

The local shard workers, and the shards they start, are started this way: were `dataload run
person --shards N` killed (kill -9, the machine's OOM killer), its workers would otherwise poll
for work forever. On Linux
the kernel sends the command SIGTERM when its parent dies (prctl PR_SET_PDEATHSIG, which
survives exec); elsewhere the command runs as it is. Kept out of the `flows` package so that
starting it imports nothing heavy.

The command also gets Ctrl-C back where its starter ignored it: a shell's background job, nohup
and some schedulers start commands with SIGINT ignored, which they inherit, and a Prefect worker
stops on SIGTERM by interrupting itself with SIGINT. Ignoring it, workers outlived their run
until they were killed 20 s later.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> None:
    if len(argv) < 2 or not (argv[0].isdigit() or argv[0] == "-"):
        sys.exit("usage: python -m dataload.parent_death <parent pid | -> <command> [args...]")
    parent = os.getppid() if argv[0] == "-" else int(argv[0])
    command = argv[1:]
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
            sys.exit(f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(ctypes.get_errno())}")
        if os.getppid() != parent:  # it died before the signal was armed
            sys.exit(0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # kept across exec, unlike a handler
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
