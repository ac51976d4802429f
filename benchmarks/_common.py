"""Helpers shared by the benchmarks (not a test utility: benchmarks measure, tests assert)."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from typing import Any

import numpy as np

from streamer.sinks.base import Sink, Tick


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


class TimingSink(Sink):
    """A sink that records when each tick arrives (frame-interval error at the output edge)."""

    name = "timing"

    def __init__(self) -> None:
        self.times: list[float] = []

    def write(self, tick: Tick) -> None:
        self.times.append(time.monotonic())


def percentiles(values: Any, scale: float = 1.0) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64) * scale
    if a.size == 0:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    return {"p50": round(float(np.percentile(a, 50)), 3), "p99": round(float(np.percentile(a, 99)), 3),
            "max": round(float(a.max()), 3)}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_model() -> str | None:
    """The CUDA device benchmarks may run on (without importing torch when it is not installed)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def machine() -> dict[str, Any]:
    """What every figure is recorded with: figures from different machines are not comparable."""
    return {"cpu": cpu_model(), "cpus": os.cpu_count(), "gpu": gpu_model(), "python": sys.version.split()[0],
            "platform": platform.platform()}


def report(result: dict[str, Any]) -> None:
    result.setdefault("machine", machine())
    print(json.dumps(result))
