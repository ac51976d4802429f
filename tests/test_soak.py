"""The soak in its short form (benchmarks/bench_soak.py for one minute): the default host with the LLM persona,
replay chat at 10x and the websocket under 50 messages/s keeps streaming and answering, and leaks neither
file descriptors nor threads. How much memory grows per hour and how late frames are is the benchmark's
figure (benchmarks/RESULTS.md), not a test's."""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_a_minute_of_soak_keeps_streaming_answering_and_leaks_nothing():
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_soak.py"), "--minutes", "1",
                           "--sample-s", "15"], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    samples = res["samples"]
    assert len(samples) >= 3
    ticks = [s["ticks"] for s in samples]
    assert all(b > a for a, b in zip(ticks, ticks[1:], strict=False)), ticks  # the clock never stopped
    assert all(not s["failed_sinks"] for s in samples)
    assert res["messages_sent"] > 1000 and res["llm_requests"] > 0 and res["chat_lines_started_last_1000"] > 0
    assert samples[-1]["queue"] <= 200 + samples[-1]["paid_pending"]  # bounded however fast chat comes
    assert res["headline"]["fds_growth"] <= 4 and res["headline"]["threads_growth"] <= 2
