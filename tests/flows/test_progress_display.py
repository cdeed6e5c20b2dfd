"""The terminal's progress: plain lines with counts, rate and ETA when not a wide terminal."""

from __future__ import annotations

import io
import time

import pytest

from dataload.flows import progress as progress_module
from dataload.flows.progress import RunProgress, Step, describe_step, terminal_progress


def test_a_step_says_its_count_total_rate_and_eta() -> None:
    step = Step("people queried", total=2000, started=time.monotonic() - 2.0)
    step.add(1000)

    text = describe_step(step)

    assert text.startswith("people queried 1,000/2,000 ")
    assert "/s ETA 2s" in text
    step.finish()
    assert describe_step(step).startswith("people queried 1,000 in 2.0s")


def test_piped_output_gets_a_plain_line_every_few_seconds_and_one_per_finished_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(progress_module, "PLAIN_INTERVAL_S", 0.3)
    stream = io.StringIO()  # not a terminal
    queried = {"n": 0}
    with terminal_progress(stream), RunProgress("person") as run:
        step = run.step("people queried", total=100, reader=lambda: queried["n"])
        for _ in range(10):
            queried["n"] += 10
            time.sleep(0.1)
        step.finish()
        time.sleep(0.6)

    lines = stream.getvalue().splitlines()
    running = [line for line in lines if "/100" in line]
    assert running and all(line.startswith("person: people queried ") for line in running)
    assert "ETA" in running[0]
    assert lines.count(next(line for line in lines if " in " in line)) == 1
    assert lines[-1].startswith("person: people queried 100 in ")
    assert all(len(line) <= 80 for line in lines)
