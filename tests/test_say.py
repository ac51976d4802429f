"""``streamer say`` end to end: piper voice, procedural avatar, MP4 out; checked by whisper and pixels."""

import subprocess
import sys

import numpy as np
import pytest

from avatars import load_avatar
from tests.conftest import read_mp4, word_error_rate, write_config
from tests.test_avatar import mouth_darkness

pytestmark = pytest.mark.slow

SENTENCE = "Welcome to the stream everyone. Today this coffee maker costs only forty nine dollars."


@pytest.fixture(scope="module")
def said(tmp_path_factory):
    pytest.importorskip("piper", reason="needs the piper extra")
    tmp = tmp_path_factory.mktemp("say")
    cfg = write_config(tmp, "[stream]\nwidth = 640\nheight = 360\nfps = 25\n[voice]\nengine = \"piper\"\n")
    out = tmp / "out.mp4"
    proc = subprocess.run([sys.executable, "-m", "streamer", "say", SENTENCE, "-o", str(out), "-c", str(cfg),
                           "--voice", "piper"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return read_mp4(out)


def test_video_at_configured_fps_and_audio_of_the_same_length(said):
    frames, audio, fps, rate = said
    assert fps == 25 and frames[0].shape == (360, 640, 3)
    video_s, audio_s = len(frames) / fps, len(audio) / rate
    assert abs(video_s - audio_s) <= 1 / fps
    assert video_s > 3.0


def test_whisper_hears_the_sentence(said, transcriber):
    _, audio, _, rate = said
    text = transcriber.transcribe(audio, rate)
    # whisper writes numbers as digits: compare in that form
    hyp = text.replace("$49", "49 dollars").replace("forty-nine", "49").replace("forty nine", "49")
    assert word_error_rate(SENTENCE.replace("forty nine", "49"), hyp) <= 0.10, text


def test_mouth_moves_when_loud_and_rests_in_silence(said):
    frames, audio, fps, rate = said
    hints = load_avatar("", 640, 360).hints
    spf = rate // int(fps)
    n = min(len(frames), len(audio) // spf)
    rms_db = np.array([20 * np.log10(np.sqrt(np.mean(audio[i * spf:(i + 1) * spf] ** 2)) + 1e-9) for i in range(n)])
    dark = np.array([mouth_darkness(frames[i], hints) for i in range(n)])
    quiet = rms_db < -70
    loud = rms_db > -30
    silent = quiet & np.roll(quiet, 1) & np.roll(quiet, 2)  # at least 3 frames into a silence
    assert loud.sum() > 40 and silent.sum() >= 10  # the clip has a silent lead-in and tail
    assert (dark[loud] > 10).mean() > 0.8
    assert (dark[silent] == 0).mean() > 0.95


def test_video_and_audio_are_aligned_within_one_frame(said):
    """Cross-correlate the mouth's motion with the audio envelope in the rendered file: peak at 0 +- 1."""
    frames, audio, fps, rate = said
    hints = load_avatar("", 640, 360).hints
    spf = rate // int(fps)
    n = min(len(frames), len(audio) // spf)
    envelope = np.array([np.sqrt(np.mean(audio[i * spf:(i + 1) * spf] ** 2)) for i in range(n)])
    mouth = np.array([mouth_darkness(frames[i], hints) for i in range(n)], dtype=np.float64)
    envelope = (envelope - envelope.mean()) / envelope.std()
    mouth = (mouth - mouth.mean()) / mouth.std()
    lags = range(-5, 6)
    corr = [np.mean(envelope[max(0, -k):n - max(0, k)] * mouth[max(0, k):n - max(0, -k)]) for k in lags]
    best = list(lags)[int(np.argmax(corr))]
    assert abs(best) <= 1, dict(zip(lags, np.round(corr, 3), strict=True))
