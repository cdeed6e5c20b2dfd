"""A command that handles Ctrl-C keeps the exit code it chose, however it is started."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

# A command on the real app that is interrupted inside code run by a string `exec` (as a
# dataclass's methods are built during an import) and answers 130, as `dataload demo` does.
PROBE = textwrap.dedent(
    """
    import sys

    import typer

    from dataload import cli

    @cli.app.command("interrupted-probe")
    def interrupted_probe() -> None:
        try:
            exec("raise KeyboardInterrupt")
        except KeyboardInterrupt:
            raise typer.Exit(130) from None

    sys.argv = ["dataload", "interrupted-probe"]
    cli.main()
    """
)


def test_a_handled_interrupt_exits_with_the_commands_code_under_python_m(tmp_path: Path) -> None:
    (tmp_path / "interrupted_probe.py").write_text(PROBE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}

    result = subprocess.run(
        [sys.executable, "-m", "interrupted_probe"], env=env, capture_output=True, timeout=60
    )

    # Without the fix CPython ended the process by SIGINT (-2) after the command chose 130.
    assert result.returncode == 130, result.stderr.decode()
