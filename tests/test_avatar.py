"""The procedural renderer: the mouth follows the speech energy, rests in silence, eyes blink."""

import numpy as np
import pytest

from avatars import AvatarError, load_avatar
from avatars.procedural import ProceduralRenderer

FPS, RATE = 25, 48000


def mouth_darkness(frame, hints):
    """Dark (cavity) pixels in the mouth region: 0 for a closed mouth."""
    mx, my = hints.mouth
    w = hints.mouth_width
    roi = frame[int(my - 0.3 * w):int(my + 0.75 * w), int(mx - 0.6 * w):int(mx + 0.6 * w)]
    luma = roi.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return int((luma < 70).sum())


def test_mouth_opens_with_loud_audio_and_rests_in_silence():
    av = load_avatar("", 640, 360)
    r = ProceduralRenderer(av, FPS)
    t = np.arange(int(2.0 * RATE)) / RATE
    loud = 0.5 * np.sin(2 * np.pi * 180 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    pcm = np.concatenate([np.zeros(RATE), loud, np.zeros(RATE)]).astype(np.float32)
    poses = r.analyze(pcm, RATE)
    assert len(poses) == 4 * FPS
    dark = np.array([mouth_darkness(r.frame(i, p), av.hints) for i, p in enumerate(poses)])
    silent_before, speech, silent_after = dark[:FPS], dark[FPS + 3:3 * FPS], dark[3 * FPS + 5:]
    assert silent_before.max() == 0 and silent_after.max() == 0
    assert (speech > 20).mean() > 0.95
    opens = np.array([p.open for p in poses[FPS:3 * FPS]])
    assert opens.std() > 0.02  # it moves with the syllable envelope, not a fixed toggle


def test_eyes_blink_every_few_seconds_and_not_constantly():
    r = ProceduralRenderer(load_avatar("", 640, 360), FPS)
    closed = [i for i in range(60 * FPS) if r.blink_amount(i) >= 1.0]
    blinks = [i for j, i in enumerate(closed) if j == 0 or i - closed[j - 1] > 1]
    assert 9 <= len(blinks) <= 30
    assert len(closed) < 0.1 * 60 * FPS
    a, b = r.frame(closed[0]), r.frame(closed[0] - 10)
    ex, ey = r.avatar.hints.eyes[0]
    eye = lambda f: f[int(ey - 8):int(ey + 8), int(ex - 12):int(ex + 12)]  # noqa: E731
    assert np.abs(eye(a).astype(int) - eye(b).astype(int)).mean() > 10


def test_idle_head_moves_gently():
    r = ProceduralRenderer(load_avatar("", 640, 360), FPS)
    f0, f1 = r.frame(0).astype(int), r.frame(50).astype(int)
    changed = (np.abs(f0 - f1).max(axis=2) > 10).mean()
    assert 0.005 < changed < 0.2  # the head moves (edges shift), the picture does not shake


def test_real_photo_face_is_found(tmp_path):
    data = pytest.importorskip("skimage.data")
    import cv2

    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    av = load_avatar(str(path), 640, 360)
    x, y, w, h = av.hints.face_box
    mx, my = av.hints.mouth
    assert x < mx < x + w and y + h / 2 < my < y + h
    r = ProceduralRenderer(av, FPS)
    from avatars.base import MouthPose

    assert mouth_darkness(r.frame(0, MouthPose(1.0, 0.5, 0.5)), av.hints) > 50


def test_photo_without_a_face_fails_clearly(tmp_path):
    import cv2

    path = tmp_path / "wall.png"
    cv2.imwrite(str(path), np.full((300, 300, 3), 128, np.uint8))
    with pytest.raises(AvatarError, match="no face found.*mouth_x"):
        load_avatar(str(path), 640, 360)
    with pytest.raises(AvatarError, match="cannot read"):
        load_avatar(str(tmp_path / "missing.png"), 640, 360)
