"""Wav2Lip: the official checkpoint format through the real loading path, the exact mel, seamless
paste-back, bf16 and ONNX against float32, and avatar preparation on a real face photo."""

import subprocess
import sys
import time

import numpy as np
import pytest

from avatars import AvatarError, load_avatar
from avatars.paste import PasteBack, wav2lip_box
from avatars.wav2lip.audio import MEL_STEP, mel_windows, melspectrogram
from tests.conftest import write_video

torch = pytest.importorskip("torch", reason="needs torch: pip install torch==2.13.0")

from avatars.renderers import create_renderer  # noqa: E402
from avatars.wav2lip.checkpoint import CheckpointError, load_wav2lip, save_official_format  # noqa: E402
from avatars.wav2lip.model import Wav2Lip  # noqa: E402
from avatars.wav2lip.renderer import Wav2LipRenderer  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w2l") / "wav2lip_gan.pth"
    save_official_format(Wav2Lip(), path)
    return path


def speech_like(seconds, rate=48000, silent_head=0.5, silent_tail=0.5):
    t = np.arange(int(seconds * rate)) / rate
    voiced = 0.4 * np.sin(2 * np.pi * 170 * t) * (0.55 + 0.45 * np.sin(2 * np.pi * 3.5 * t))
    return np.concatenate([np.zeros(int(silent_head * rate)), voiced, np.zeros(int(silent_tail * rate))]).astype(np.float32)


def test_official_format_loads_and_renders_a_clip(checkpoint):
    raw = torch.load(checkpoint, weights_only=True)
    assert set(raw) >= {"state_dict", "global_step"} and all(k.startswith("module.") for k in raw["state_dict"])
    model = load_wav2lip(checkpoint)
    assert not model.training
    avatar = load_avatar("", 640, 360)
    r = Wav2LipRenderer(avatar, 25, checkpoint, batch=8)
    poses = r.analyze(speech_like(1.0), 48000)
    assert len(poses) == 50
    assert all(p.patch is None for p in poses[:12]) and all(p.patch is None for p in poses[-10:])  # silence skips
    speaking = [p for p in poses[14:36] if p.patch is not None]
    assert len(speaking) >= 20 and speaking[0].patch.shape == (96, 96, 3)
    x1, y1, x2, y2 = r.paste.box
    rest, talk = r.frame(0, poses[0]), r.frame(0, speaking[5])
    assert np.abs(rest[y1:y2, x1:x2].astype(int) - talk[y1:y2, x1:x2].astype(int)).mean() > 1.0


def test_wrong_shapes_and_missing_files_fail_clearly(checkpoint, tmp_path):
    raw = torch.load(checkpoint, weights_only=True)
    key = "module.audio_encoder.0.conv_block.0.weight"
    raw["state_dict"][key] = torch.zeros(16, 1, 3, 3)
    bad = tmp_path / "bad.pth"
    torch.save(raw, bad)
    with pytest.raises(CheckpointError) as e:
        load_wav2lip(bad)
    assert str(bad) in str(e.value) and "audio_encoder.0.conv_block.0.weight" in str(e.value)
    assert "(16, 1, 3, 3)" in str(e.value) and "(32, 1, 3, 3)" in str(e.value)
    missing = tmp_path / "nowhere" / "wav2lip_gan.pth"
    with pytest.raises(CheckpointError, match=f"put it at {missing}"):
        load_wav2lip(missing)
    renderer = create_renderer("wav2lip", load_avatar("", 320, 180), 25, missing)
    assert renderer.name == "procedural"  # the stream carries on with the light renderer


def _reference_mel(wav):
    """The Wav2Lip definition written out directly: loops, explicit DFT and filterbank formulas."""
    sr, n_fft, hop, n_mels = 16000, 800, 200, 80
    x = np.asarray(wav, np.float64)
    y = np.concatenate([[x[0]], x[1:] - 0.97 * x[:-1]])
    y = np.pad(y, n_fft // 2, mode="reflect")
    window = np.array([0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft) for n in range(n_fft)])
    k = np.arange(n_fft // 2 + 1)[:, None]
    n = np.arange(n_fft)[None, :]
    dft = np.exp(-2j * np.pi * k * n / n_fft)
    frames = [(dft @ (y[i:i + n_fft] * window)) for i in range(0, len(y) - n_fft + 1, hop)]
    mag = np.abs(np.array(frames)).T

    def hz_to_mel(f):
        return f / (200 / 3) if f < 1000 else 15 + np.log(f / 1000) / (np.log(6.4) / 27)

    def mel_to_hz(m):
        return m * (200 / 3) if m < 15 else 1000 * np.exp((np.log(6.4) / 27) * (m - 15))

    pts = [mel_to_hz(m) for m in np.linspace(hz_to_mel(55.0), hz_to_mel(7600.0), n_mels + 2)]
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    fb = np.zeros((n_mels, len(freqs)))
    for m in range(n_mels):
        lo, c, hi = pts[m], pts[m + 1], pts[m + 2]
        for j, f in enumerate(freqs):
            fb[m, j] = max(0.0, min((f - lo) / (c - lo), (hi - f) / (hi - c))) * 2.0 / (hi - lo)
    db = 20 * np.log10(np.maximum(1e-5, fb @ mag)) - 20
    return np.clip(8 * ((db + 100) / 100) - 4, -4, 4)


def test_mel_matches_the_definition():
    rng = np.random.default_rng(1)
    t = np.arange(16000) / 16000
    wav = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 2500 * t) + 0.02 * rng.standard_normal(t.size)
    ours = melspectrogram(wav)
    ref = _reference_mel(wav)
    assert ours.shape == ref.shape == (80, 81)
    assert np.abs(ours - ref).max() < 1e-4
    windows = mel_windows(ours, 25, 25.0)
    assert windows.shape == (25, 80, MEL_STEP) and np.array_equal(windows[5], ours[:, 16:32])


def test_paste_back_is_seamless_and_leaves_the_rest_untouched():
    avatar = load_avatar("", 640, 360)
    base = avatar.image
    box = wav2lip_box(avatar.hints.face_box, base.shape)
    paste = PasteBack(base, box)
    rng = np.random.default_rng(3)
    frame = base.copy()
    face = np.clip(rng.normal(128, 60, (96, 96, 3)), 0, 255).astype(np.uint8)
    paste.paste(frame, face)
    x1, y1, x2, y2 = box
    outside = np.ones(base.shape[:2], bool)
    outside[y1:y2, x1:x2] = False
    assert np.array_equal(frame[outside], base[outside])
    inside_zero = paste.mask[..., 0] == 0
    assert np.array_equal(frame[y1:y2, x1:x2][inside_zero], base[y1:y2, x1:x2][inside_zero])
    diff = frame.astype(np.float32) - base.astype(np.float32)  # what the paste changed
    gy, gx = np.gradient(np.abs(diff[y1:y2, x1:x2]).mean(axis=2))
    grad = np.hypot(gx, gy)
    m = paste.mask[..., 0]
    seam = grad[(m > 0.05) & (m < 0.6)].mean()
    core = grad[m > 0.95].mean()
    assert seam <= core


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-12))


def test_bfloat16_and_onnx_stay_within_35_db_of_float32(checkpoint, tmp_path):
    avatar = load_avatar("", 640, 360)
    fp32 = Wav2LipRenderer(avatar, 25, checkpoint, precision="float32")
    bf16 = Wav2LipRenderer(avatar, 25, checkpoint, precision="bfloat16")
    windows = mel_windows(melspectrogram(np.random.default_rng(0).standard_normal(16000) * 0.1), 16, 25.0)
    a, b = fp32.infer(windows), bf16.infer(windows)
    assert psnr(a, b) >= 35
    pytest.importorskip("onnx", reason="the ONNX export needs the onnx package")
    from avatars.wav2lip.onnx import OnnxWav2Lip, export_onnx

    session = OnnxWav2Lip(export_onnx(load_wav2lip(checkpoint), tmp_path / "w.onnx"))
    faces = np.repeat(fp32.face_input, len(windows), axis=0)
    out = session(windows[:, None], faces)
    onnx_faces = np.rint(np.clip(out, 0, 1) * 255).astype(np.uint8).transpose(0, 2, 3, 1)
    assert psnr(a, onnx_faces) >= 35
    copy = tmp_path / "weights.pth"  # the renderer's own ONNX path: exported beside the weights, reused
    copy.write_bytes(checkpoint.read_bytes())
    renderer = Wav2LipRenderer(avatar, 25, copy, backend="onnx")
    assert copy.with_suffix(".onnx").is_file() and psnr(a, renderer.infer(windows)) >= 35


def test_prepare_finds_the_astronaut_caches_it_and_rejects_a_blank(tmp_path, monkeypatch):
    data = pytest.importorskip("skimage.data")
    import cv2

    monkeypatch.setenv("STREAMER_CACHE", str(tmp_path / "cache"))
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    env = {"STREAMER_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    t0 = time.monotonic()
    first = subprocess.run([sys.executable, "-m", "streamer", "avatar", "prepare", str(photo)], capture_output=True,
                           text=True, env=env)
    t1 = time.monotonic()
    second = subprocess.run([sys.executable, "-m", "streamer", "avatar", "prepare", str(photo)], capture_output=True,
                            text=True, env=env)
    assert first.returncode == 0 and "face found in 1" in first.stdout and "prepared" in first.stdout
    assert second.returncode == 0 and "cached already" in second.stdout
    from avatars.prepare import prepare

    info = prepare(photo)
    assert info.cached and (info.cache / "crops.npz").is_file() and (info.cache / "mask.npy").is_file()
    x, y, w, h = info.boxes[0]
    assert 150 < x + w / 2 < 300 and 50 < y + h / 2 < 200  # the astronaut's face, upper middle of the photo
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 90, np.uint8))
    bad = subprocess.run([sys.executable, "-m", "streamer", "avatar", "prepare", str(blank)], capture_output=True,
                         text=True, env=env)
    assert bad.returncode == 1 and "no face found" in bad.stderr
    with pytest.raises(AvatarError):
        prepare(tmp_path / "missing.png")
    del t0, t1


def test_prepare_video_smooths_boxes_over_frames(tmp_path, monkeypatch):
    data = pytest.importorskip("skimage.data")
    monkeypatch.setenv("STREAMER_CACHE", str(tmp_path / "cache"))
    face = data.astronaut()[:384, 64:448]  # 384x384 around the face
    frames = [np.roll(face, int(3 * np.sin(i / 3)), axis=1).copy() for i in range(20)]
    frames[7][:] = 60  # a frame where no face can be found
    path = write_video(tmp_path / "idle.mp4", frames)
    from avatars.prepare import prepare

    info = prepare(path, progress=None)
    assert info.frames == 20 and info.detected == 19 and info.fps == 25
    jumps = np.abs(np.diff(info.boxes[:, :2], axis=0)).max()
    assert jumps <= 8  # no frame-to-frame jitter, and the blank frame borrowed its neighbours' box


def test_wav2lip_on_an_idle_video_renders_against_the_frames_it_plays_on(checkpoint, tmp_path, monkeypatch):
    pytest.importorskip("skimage.data")
    monkeypatch.setenv("STREAMER_CACHE", str(tmp_path))
    from skimage import data

    face = data.astronaut()[:384, 64:448]
    path = write_video(tmp_path / "idle.mp4", [np.roll(face, 3 * i, axis=1) for i in range(10)])
    avatar = load_avatar(str(path), 320, 320)
    r = Wav2LipRenderer(avatar, 25, checkpoint, batch=8)
    r.start_hint = 4
    poses = r.analyze(speech_like(0.6, silent_head=0.0, silent_tail=0.0), 48000)
    talking = [i for i, p in enumerate(poses) if p.patch is not None]
    assert len(talking) >= 10
    i = talking[3]
    import dataclasses

    still = dataclasses.replace(poses[i], energy=0.0)  # no speech nod, so idle and speech share the warp
    frame = r.frame(r.start_hint + i, still)
    picture, hints = r.base(r.start_hint + i)
    x, y, w, h = hints.face_box
    outside = frame.copy()
    outside[y:y + int(h * 1.2), x:x + w] = 0
    idle = r.frame(r.start_hint + i, None)
    idle[y:y + int(h * 1.2), x:x + w] = 0
    assert np.array_equal(outside, idle)  # only the face box of the right loop frame changed
