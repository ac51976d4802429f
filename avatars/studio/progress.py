"""What the operator sees while the studio works: an estimate first, then every step, then the scores.

Generating on a CPU takes minutes per picture, so the time is said before the work starts (measured
on this machine by one real step and one decode, not guessed) and the running line shows the step,
the speed and the time left. On a terminal the step line is redrawn in place; into a file or a pipe
it is written every tenth of the steps, so a log stays readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from avatars.studio.create import Candidate
from avatars.studio.portraits import Estimate


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class ConsoleReport:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.out = stream or sys.stderr
        self.live = bool(getattr(self.out, "isatty", lambda: False)())
        self.started = 0.0
        self.total_steps = 0
        self.done_steps = 0
        self.candidates = 1

    def say(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def estimate(self, est: Estimate, steps: int, candidates: int, device: str) -> None:
        total = est.total_s(steps, candidates)
        where = "on the CPU" if device == "cpu" else f"on {device}"
        self.say(f"{candidates} candidate(s) x {steps} steps {where}: about {duration(total)} "
                 f"({est.step_s:.2f} s per step, {est.decode_s:.1f} s to decode each picture)")
        if device == "cpu" and total > 120:
            self.say("  (a CUDA GPU takes seconds per picture; fewer --steps or --candidates, or a smaller --size, "
                     "is quicker here)")
        self.started, self.total_steps, self.done_steps, self.candidates = time.monotonic(), steps * candidates, 0, candidates

    def step(self, candidate: int, step: int, steps: int) -> None:
        self.done_steps += 1
        if not self.started:
            self.started = time.monotonic()
            self.total_steps = steps * self.candidates
        elapsed = time.monotonic() - self.started
        rate = elapsed / self.done_steps
        left = max(0, self.total_steps - self.done_steps) * rate
        bar = "#" * (20 * step // steps) + "." * (20 - 20 * step // steps)
        line = (f"  candidate {candidate + 1}/{self.candidates} [{bar}] step {step}/{steps}  "
                f"{rate:.2f} s/step, about {duration(left)} left")
        if self.live:
            self.out.write("\r" + line + ("\n" if step == steps else ""))
            self.out.flush()
        elif step == steps or step % max(1, steps // 10) == 0:
            self.say(line)

    def candidate(self, cand: Candidate) -> None:
        self.say(f"  {cand.summary()}")
