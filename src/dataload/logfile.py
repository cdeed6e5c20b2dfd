"""Where a command's details go: the log file under DATALOAD_HOME, so the terminal keeps one line.

Every command appends to `DATALOAD_HOME/log/dataload.log`: Prefect's and the flows' log records,
and the traceback of a failure. The terminal shows what the user needs (progress, a summary, or
one line saying what failed and what to check) and the path of this file; `--verbose` shows
everything in the terminal too.
"""

from __future__ import annotations

import logging
import os
import traceback
from pathlib import Path

__all__ = ["LOG_FORMAT", "attach_log_file", "log_failure", "log_path"]

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def log_path() -> Path:
    """The log file; DATALOAD_HOME is read directly, as the settings may be what failed."""
    from dataload.settings import default_home

    home = os.environ.get("DATALOAD_HOME")
    return (Path(home) if home else default_home()) / "log" / "dataload.log"


def attach_log_file(level: int = logging.INFO) -> Path:
    """Send log records of `level` and above, from every logger, to the log file."""
    path = log_path()
    root = logging.getLogger()
    if any(getattr(handler, "dataload_log", False) for handler in root.handlers):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.dataload_log = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    # The flows' own loggers log at INFO; the root logger's WARNING would drop them.
    logging.getLogger("dataload").setLevel(min(level, logging.getLogger("dataload").level or level))
    return path


def log_failure(command: str, exc: BaseException) -> Path | None:
    """Append the failure's traceback to the log file; its path, or None if it cannot be written."""
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            log.write(f"--- dataload {command} failed\n")
            log.write("".join(traceback.format_exception(exc)))
    except OSError:
        return None
    return path
