"""Green-screen keying: the screen becomes the background, the subject stays, edges are soft and
carry no green."""

import cv2
import numpy as np

from avatars.greenscreen import ChromaKey, border_colour

GREEN = (40, 190, 70)


def subject_on_green(size=240):
    img = np.zeros((size, size, 3), np.uint8)
    img[:] = GREEN
    cv2.ellipse(img, (size // 2, size // 2), (60, 80), 0, 0, 360, (225, 180, 150), -1, cv2.LINE_AA)
    cv2.circle(img, (size // 2, size // 2 - 20), 12, (40, 30, 30), -1)  # dark hair/eye: not green
    edge = cv2.ellipse(np.zeros((size, size), np.uint8), (size // 2, size // 2), (60, 80), 0, 0, 360, 255, 3)
    spill = img.astype(np.int32)
    spill[edge > 0, 1] += 35  # green light bleeding onto the subject's edge
    return cv2.GaussianBlur(np.clip(spill, 0, 255).astype(np.uint8), (5, 5), 0)  # a camera's soft edge


def test_key_replaces_the_screen_and_keeps_the_subject():
    fg = subject_on_green()
    bg = np.zeros_like(fg)
    bg[:] = (20, 40, 200)
    key = ChromaKey()
    assert border_colour(fg) == GREEN
    out = key.composite(fg, bg)
    assert np.array_equal(out[:20, :20], bg[:20, :20]) and np.array_equal(out[-20:, -20:], bg[-20:, -20:])
    c = fg.shape[0] // 2
    assert np.abs(out[c + 30, c].astype(int) - fg[c + 30, c].astype(int)).max() <= 1  # skin untouched
    assert np.abs(out[c - 20, c].astype(int) - fg[c - 20, c].astype(int)).max() <= 2  # dark detail untouched
    a = key.alpha(fg)
    assert ((a > 0.05) & (a < 0.95)).sum() > 100  # a soft edge, not a hard cut-out
    ring = cv2.ellipse(np.zeros(fg.shape[:2], np.uint8), (c, c), (60, 80), 0, 0, 360, 255, 5) > 0
    r, g, b = (out[ring].astype(int)[:, i] for i in range(3))
    assert np.mean(g > np.maximum(r, b) + 10) < 0.05  # no green fringe left on the edge


def test_background_of_another_size_is_fitted():
    fg = subject_on_green(200)
    bg = np.full((720, 1280, 3), 90, np.uint8)
    assert ChromaKey().composite(fg, bg).shape == fg.shape


def test_a_green_screen_portrait_is_keyed_over_the_configured_background(tmp_path):
    data = __import__("pytest").importorskip("skimage.data")
    from avatars import load_avatar

    photo = data.astronaut().copy()
    photo[:, :60] = GREEN  # a strip of green screen at the left edge
    photo[:60, :] = GREEN
    photo[-10:, :] = GREEN
    photo[:, -10:] = GREEN
    path, bg_path = tmp_path / "host.png", tmp_path / "studio.png"
    cv2.imwrite(str(path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(bg_path), np.full((300, 300, 3), (200, 60, 30), np.uint8))  # BGR: a blue-ish studio
    av = load_avatar(str(path), 512, 512, green_screen=True, background=str(bg_path))
    corner = av.image[5:40, 5:40].reshape(-1, 3)
    assert np.abs(corner.astype(int) - (30, 60, 200)).max() <= 2  # the screen became the background
    assert av.hints.face_box[2] > 50  # and the face is still found on the keyed picture


def test_a_green_screen_host_over_a_background_video_moves_while_the_video_plays(tmp_path):
    data = __import__("pytest").importorskip("skimage.data")
    from avatars import load_avatar
    from avatars.procedural import ProceduralRenderer
    from tests.conftest import write_video

    photo = data.astronaut().copy()
    photo[:, :60] = GREEN
    photo[:40, :] = GREEN
    path = tmp_path / "host.png"
    cv2.imwrite(str(path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    # the background brightens frame by frame
    video = write_video(tmp_path / "bg.mp4", [np.full((90, 160, 3), 20 + 20 * i, np.uint8) for i in range(10)])
    av_ = load_avatar(str(path), 640, 360, green_screen=True, background=str(video))
    r = ProceduralRenderer(av_, 25)
    f0, f5 = r.frame(0), r.frame(5)
    # the margins and the keyed strip show the video, frame by frame
    assert abs(int(f5[180, 5].mean()) - int(f0[180, 5].mean())) >= 60
    face = av_.hints.face_box
    cx, cy = face[0] + face[2] // 2, face[1] + face[3] // 2
    assert np.abs(f0[cy, cx].astype(int) - f5[cy, cx].astype(int)).max() < 40  # the host is the host
