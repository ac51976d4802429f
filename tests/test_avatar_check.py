"""``streamer avatar check`` and the doctor's lip-sync lines: a checkpoint that loads is rendered and
measured (sync against the voice, mouth sharpness, speed); one that does not is named with its cause."""

import subprocess
import sys

import cv2
import numpy as np
import pytest

from avatars.check import loudness_per_frame, mouth_opening, sync_score
from tests.conftest import REPO

torch = pytest.importorskip("torch", reason="needs torch: pip install torch==2.13.0")

from avatars.wav2lip.checkpoint import save_official_format  # noqa: E402
from avatars.wav2lip.model import Wav2Lip  # noqa: E402


def _face_with_mouth(opening):
    face = np.full((96, 96, 3), (200, 160, 140), np.uint8)
    if opening > 0:
        cv2.ellipse(face, (48, 72), (14, int(1 + 10 * opening)), 0, 0, 360, (60, 20, 30), -1)
    return face


def test_sync_finds_the_lag_of_a_mouth_that_follows_the_voice():
    rng = np.random.default_rng(4)
    rate, fps, n = 16000, 25, 120
    syllables = np.clip(np.sin(np.arange(n) * 2 * np.pi / 9.0), 0, None) * (rng.random(n) > 0.2)
    pcm = np.concatenate([a * np.sin(2 * np.pi * 160 * np.arange(640) / rate) for a in syllables]).astype(np.float32)
    loud = loudness_per_frame(pcm, rate, fps, n)
    closed = _face_with_mouth(0)
    for lag in (0, 2, -1):
        opening = np.array([mouth_opening(_face_with_mouth(syllables[(i - lag) % n]), closed) for i in range(n)])
        r, offset = sync_score(opening, loud)
        assert r > 0.9 and offset == lag
    noise = np.array([mouth_opening(_face_with_mouth(x), closed) for x in rng.random(n)])
    r, _ = sync_score(noise, loud)
    assert r < 0.35  # a mouth that ignores the voice does not pass
    # a face that merely changes while there is sound: excluded by counting only the rendered frames
    talking = loud > 0.01
    onoff = np.where(talking, 5.0, 0.0)
    assert sync_score(onoff, loud)[0] > 0.5 and sync_score(onoff, loud, mask=talking)[0] == 0.0


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ck") / "wav2lip_gan.pth"
    save_official_format(Wav2Lip(), path)
    return path


def _env(tmp_path):
    return {"STREAMER_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
            "STREAMER__AVATAR__BACKEND": "torch", "STREAMER__AVATAR__PRECISION": "float32",
            "STREAMER__STREAM__WIDTH": "640", "STREAMER__STREAM__HEIGHT": "360"}


@pytest.mark.slow
def test_check_renders_and_reports_random_weights_as_out_of_sync(checkpoint, tmp_path):
    out = tmp_path / "check.mp4"
    proc = subprocess.run([sys.executable, "-m", "streamer", "avatar", "check", "--checkpoint", str(checkpoint),
                           "-o", str(out), "--text", "Hello there, nice to see you.", "--text", "欢迎来到直播间。"],
                          capture_output=True, text=True, env=_env(tmp_path), cwd=REPO, timeout=600)
    text = proc.stdout
    assert f"checkpoint: {checkpoint}: loads" in text and "generator: torch-float32 on cpu" in text
    assert "sync: over the" in text and "sharpness:" in text and "speed:" in text
    assert "precision: onnx-int8 is" in text or "precision: torch-bfloat16 is" in text  # measured and recorded
    assert proc.returncode == 1 and "the mouth does not move with the voice" in text  # random weights: it says so
    from tests.conftest import read_mp4

    frames, audio, fps, _ = read_mp4(out)
    assert fps == 25 and len(frames) > 25 and frames[0].shape == (360, 640, 3) and np.abs(audio).max() > 0.05


def test_check_and_doctor_name_a_truncated_checkpoint(checkpoint, tmp_path):
    broken = tmp_path / "wav2lip_gan.pth"
    data = checkpoint.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    proc = subprocess.run([sys.executable, "-m", "streamer", "avatar", "check", "--checkpoint", str(broken)],
                          capture_output=True, text=True, env=_env(tmp_path), cwd=REPO, timeout=300)
    assert proc.returncode == 1 and str(broken) in proc.stdout and "truncated" in proc.stdout

    from streamer.avatar_check import doctor_checks
    from streamer.config import load_settings

    base = load_settings(REPO / "config" / "default.toml")

    def with_checkpoint(path):
        return base.model_copy(update={"avatar": base.avatar.model_copy(update={"wav2lip_checkpoint": str(path)})})

    [line] = doctor_checks(with_checkpoint(broken))
    assert not line.ok and str(broken) in line.detail and "truncated" in line.detail
    good, generator = doctor_checks(with_checkpoint(checkpoint))
    assert good.ok and "valid Wav2Lip generator" in good.detail and "avatar check" in good.detail
    assert generator.ok and "on cpu" in generator.detail
