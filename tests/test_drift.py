"""Audio drift against a sound card's own crystal: corrected during idle, never by stretching speech."""

import numpy as np
import pytest

from streamer.sinks.drift import DriftCorrector

RATE, FPS = 48000, 25
SPF = RATE // FPS


def simulate(ppm, hours, corrector, speech_every=10, speech_len=5):
    """Feed one tick of samples per frame time into a device that plays at RATE * (1 + ppm)."""
    buffered = corrector.target * RATE
    worst = 0.0
    speech_samples_out = 0
    ticks = int(hours * 3600 * FPS)
    consume = SPF * (1 + ppm * 1e-6)
    for n in range(ticks):
        speaking = (n // (FPS * speech_len)) % speech_every == 0  # 5 s of speech every 50 s
        chunk = np.zeros(SPF, np.float32) if not speaking else np.ones(SPF, np.float32)
        out = corrector.adjust(chunk, buffered / RATE, speaking)
        if speaking:
            assert out.size == SPF  # speech is never stretched or cut
            speech_samples_out += out.size
        buffered += out.size - consume
        worst = max(worst, abs(buffered / RATE - corrector.target))
    return buffered / RATE, worst


@pytest.mark.parametrize("ppm", [-300, 120, 500])
def test_buffer_level_stays_on_target_for_hours(ppm):
    c = DriftCorrector(RATE, target_latency_s=0.15)
    final, worst = simulate(ppm, hours=2, corrector=c)
    uncorrected = abs(ppm) * 1e-6 * 2 * 3600  # seconds of drift without correction
    assert uncorrected > 0.8
    assert abs(final - 0.15) < 0.03 and worst < 0.05
    assert (c.inserted if ppm < 0 else c.dropped) == 0  # steered one way only, no hunting


def test_no_correction_while_speaking_even_when_far_off():
    c = DriftCorrector(RATE, target_latency_s=0.15)
    chunk = np.ones(SPF, np.float32)
    assert c.adjust(chunk, 0.9, speaking=True) is chunk
    idle = np.zeros(SPF, np.float32)
    assert c.adjust(idle, 0.9, speaking=False).size < SPF
    assert c.adjust(idle, 0.0, speaking=False).size > SPF
