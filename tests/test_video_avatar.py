"""Idle-video avatars: ping-pong playback, per-frame faces, continuity between idle and speech."""

import numpy as np
import pytest

from avatars import load_avatar
from avatars.base import MouthPose
from avatars.procedural import ProceduralRenderer
from avatars.video import pingpong
from tests.conftest import write_video
from tests.test_avatar import mouth_darkness


def test_pingpong_never_jumps():
    seq = [pingpong(i, 4) for i in range(12)]
    assert seq == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1]
    assert all(abs(a - b) == 1 for a, b in zip(seq, seq[1:], strict=False))
    assert pingpong(7, 1) == 0


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    data = pytest.importorskip("skimage.data")
    face = data.astronaut()[:384, 64:448]
    return write_video(tmp_path_factory.mktemp("video") / "idle.mp4", [np.roll(face, 2 * i, axis=1) for i in range(12)])


def test_video_avatar_plays_ping_pong_with_a_mouth_on_every_frame(clip, tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMER_CACHE", str(tmp_path))
    av_ = load_avatar(str(clip), 320, 320)
    assert av_.frames == 12
    r = ProceduralRenderer(av_, 25)
    # idle: ticks 11 and 13 show the same loop frame (the loop turns around at frame 11)
    a, b = r.base(10)[0], r.base(12)[0]
    assert np.array_equal(a, b)
    # the mouth follows the face as it moves across the loop
    xs = [r.base(t)[1].mouth[0] for t in range(0, 12)]
    assert xs[-1] - xs[0] > 10
    for t in (0, 6, 11):
        hints = r.base(t)[1]
        assert mouth_darkness(r.frame(t, MouthPose(1.0, 0.5, 0.0)), hints) > 30
    # speech starting at tick 5 is drawn on loop frame 5, the very frame idle showed at tick 5:
    # only the mouth differs
    idle_5 = r.frame(5, None)
    speaking_5 = r.frame(5, MouthPose(0.8, 0.5, 0.0))
    mx, my = r.base(5)[1].mouth
    top = int(my - 40)
    assert top > 50 and np.array_equal(idle_5[:top], speaking_5[:top])
    assert not np.array_equal(idle_5, speaking_5)


def test_a_loop_shot_at_another_rate_plays_at_its_own_speed(clip, tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMER_CACHE", str(tmp_path))
    assert load_avatar(str(clip), 160, 160, fps=50).frames == 24  # a 25 fps loop at 50 fps output: each frame twice
    assert load_avatar(str(clip), 160, 160, fps=25).frames == 12


def test_an_avatar_folder_carries_its_own_settings(tmp_path, monkeypatch):
    data = pytest.importorskip("skimage.data")
    import cv2

    from avatars.folder import read_folder

    monkeypatch.setenv("STREAMER_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "mia"
    folder.mkdir()
    photo = data.astronaut().copy()
    photo[:, :60] = (40, 190, 70)
    cv2.imwrite(str(folder / "mia.png"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(folder / "studio.png"), np.full((100, 100, 3), (200, 60, 30), np.uint8))
    (folder / "avatar.toml").write_text('name = "Mia"\nmedia = "mia.png"\ngreen_screen = true\nbackground = "studio.png"\n'
                                        '[[actions]]\nname = "wave"\nfile = "wave.mp4"\non = "gift"\n')
    spec = read_folder(folder)
    assert spec.name == "Mia" and spec.actions[0]["file"] == str(folder / "wave.mp4")
    avatar = load_avatar(str(folder), 512, 512)
    assert np.abs(avatar.image[200, 5].astype(int) - (30, 60, 200)).max() <= 2  # keyed over its own background
    (folder / "avatar.toml").write_text('nmae = "typo"\n')
    with pytest.raises(Exception, match="avatar.toml: nmae"):
        load_avatar(str(folder), 512, 512)


def test_a_green_screen_loop_is_keyed_over_a_background_video(tmp_path, monkeypatch):
    data = pytest.importorskip("skimage.data")
    monkeypatch.setenv("STREAMER_CACHE", str(tmp_path / "cache"))
    face = data.astronaut()[:384, 64:448].copy()
    face[:, :50] = (40, 190, 70)
    face[:, -50:] = (40, 190, 70)

    write_video(tmp_path / "host.mp4", [np.roll(face, i, axis=0) for i in range(8)])
    write_video(tmp_path / "bg.mp4", [np.full((90, 160, 3), 20 + 25 * i, np.uint8) for i in range(8)])
    avatar = load_avatar(str(tmp_path / "host.mp4"), 320, 320, green_screen=True, background=str(tmp_path / "bg.mp4"))
    assert avatar.alphas and avatar.alpha_at(3).shape == (320, 320)
    r = ProceduralRenderer(avatar, 25)
    f1, f6 = r.frame(1), r.frame(6)
    assert int(f6[160, 8].mean()) - int(f1[160, 8].mean()) >= 60  # the keyed strip shows the video playing
