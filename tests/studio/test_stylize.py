"""``streamer avatar stylize``: AnimeGANv2's generator in the published layout (random weights here),
the face-aligned crop pasted back, and weights or photos that cannot work refused by name."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs the studio extra: pip install -e '.[studio]'")

from avatars.default_host import draw_default_host  # noqa: E402
from avatars.studio import StudioError  # noqa: E402
from avatars.studio.animegan import AnimeGANv2Generator, load_generator  # noqa: E402
from avatars.studio.progress import ConsoleReport  # noqa: E402
from avatars.studio.stylize import Stylizer, face_square, feather_mask  # noqa: E402

LAYOUT = Path(__file__).resolve().parent.parent / "data" / "animeganv2_layout.json"


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """Random generator weights saved as the published .pt files are: a plain state_dict."""
    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("animegan") / "face_paint_512_v2.pt"
    torch.save(AnimeGANv2Generator().state_dict(), path)
    return path


def pass_through_state() -> dict:
    """Hand-set weights of the same architecture that keep a face a face: every conv passes the RGB
    channels straight through (centre tap 1), norms keep their scale, the 256->256 residual blocks add
    nothing, so the output is a monotonic, 4x-softened copy of the input. Lets the success path run
    where the real face_paint weights cannot be downloaded."""
    from torch import nn

    model = AnimeGANv2Generator()
    state = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            w, c = state[name + ".weight"], m.kernel_size[0] // 2
            if m.groups == 1:
                for i in range(min(3, w.shape[0], w.shape[1])):
                    w[i, i, c, c] = 1.0
            else:
                w[:, 0, c, c] = 1.0
        elif isinstance(m, nn.GroupNorm):
            state[name + ".weight"][:] = 1.0
    state["out_layer.0.weight"] *= 0.6
    return state


@pytest.fixture(scope="module")
def pass_through(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("animegan") / "pass_through.pt"
    torch.save(pass_through_state(), path)
    return path


def test_state_dict_layout_is_the_published_one():
    published = json.loads(LAYOUT.read_text())["tensors"]
    ours = {k: list(v.shape) for k, v in AnimeGANv2Generator().state_dict().items()}
    assert list(ours) == list(published)  # names and order
    assert ours == published  # shapes
    assert sum(int(np.prod(s)) for s in published.values()) == 2_143_552


def test_saved_weights_load_and_keep_any_input_size(weights):
    model = load_generator(weights)
    for h, w in ((64, 64), (70, 90), (33, 47)):
        x = torch.rand(1, 3, h, w) * 2 - 1
        with torch.inference_mode():
            y = model(x)
        assert y.shape == (1, 3, h, w)
        assert float(y.abs().max()) <= 1.0
    state = torch.load(weights, weights_only=True)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_weights_of_another_network_are_refused_by_name(tmp_path):
    wav2lip_like = tmp_path / "wav2lip.pth"
    torch.save({"face_encoder_blocks.0.0.conv_block.0.weight": torch.zeros(16, 6, 7, 7)}, wav2lip_like)
    with pytest.raises(StudioError, match=r"not an AnimeGANv2 generator.*77 tensors expected: 77 missing "
                                          r"\(e.g. block_a.0.1.weight\); 1 unexpected"):
        load_generator(wav2lip_like)
    wrong_shape = AnimeGANv2Generator().state_dict()
    wrong_shape["out_layer.0.weight"] = torch.zeros(3, 64, 1, 1)
    torch.save(wrong_shape, tmp_path / "v3.pt")
    with pytest.raises(StudioError, match=r"1 of the wrong shape \(e.g. out_layer.0.weight\)"):
        load_generator(tmp_path / "v3.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(StudioError, match="not a PyTorch weights file"):
        load_generator(tmp_path / "text.pt")
    with pytest.raises(StudioError, match="weights not found .*face_paint_512_v2.pt"):
        load_generator(tmp_path / "missing.pt")


def test_face_square_stays_inside_and_the_feather_has_no_hard_edge():
    sq = face_square((10, 20, 100, 100), 640, 360)
    assert sq.x == 0 and sq.side == 220 and sq.y + sq.side <= 360
    big = face_square((200, 50, 300, 300), 640, 360)
    assert big.side == 360 and big.y == 0
    m = feather_mask(200)[..., 0]
    assert m[100, 100] == 1.0 and m[0, 100] < 0.01 and m[100, 0] < 0.01
    assert np.abs(np.diff(m[100])).max() < 0.07


def test_the_face_is_stylized_at_full_resolution_and_pasted_back(weights):
    host = draw_default_host(320, 240).image
    st = Stylizer(weights, "cpu")
    out = st.stylize(host, face_size=128, max_side=160)
    assert out.shape == host.shape and out.dtype == np.uint8
    whole = cv2.resize(st.run(cv2.resize(host, (160, 120), interpolation=cv2.INTER_AREA)), (320, 240),
                       interpolation=cv2.INTER_CUBIC)
    from avatars.portrait import detect_face

    sq = face_square(detect_face(host), 320, 240)
    face = cv2.resize(st.run(cv2.resize(host[sq.y:sq.y + sq.side, sq.x:sq.x + sq.side], (128, 128),
                                        interpolation=cv2.INTER_AREA)), (sq.side, sq.side),
                      interpolation=cv2.INTER_CUBIC if sq.side > 128 else cv2.INTER_AREA)
    c = sq.side // 2
    assert np.abs(out[sq.y + c, sq.x + c].astype(int) - face[c, c].astype(int)).max() <= 1  # face pass inside
    assert np.abs(out[2, 2].astype(int) - whole[2, 2].astype(int)).max() <= 1  # whole-picture pass outside
    assert np.abs(out.astype(int) - host.astype(int)).mean() > 5  # and it did change the picture


def test_a_photo_without_a_face_is_refused(weights):
    flat = np.full((128, 128, 3), 120, np.uint8)
    with pytest.raises(StudioError, match="no face found in the picture to stylize"):
        Stylizer(weights, "cpu").stylize(flat)


def test_stylize_that_loses_the_face_writes_nothing(weights, tmp_path):
    from avatars.studio.make import make_from_photo

    photo = tmp_path / "me.png"
    cv2.imwrite(str(photo), cv2.cvtColor(draw_default_host(256, 256).image, cv2.COLOR_RGB2BGR))
    with pytest.raises(StudioError, match="stylized picture has no face"):  # random weights make no face
        make_from_photo(photo, Stylizer(weights, "cpu"), tmp_path / "anime.png", face_size=128,
                        report=ConsoleReport(io.StringIO()))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["me.png"]


def test_cli_stylize_reports_bad_weights(tmp_path, capsys):
    from streamer.cli import main

    photo = tmp_path / "me.png"
    cv2.imwrite(str(photo), cv2.cvtColor(draw_default_host(128, 128).image, cv2.COLOR_RGB2BGR))
    bad = tmp_path / "paprika.pt"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    rc = main(["avatar", "stylize", str(photo), "--weights", str(bad), "-o", str(tmp_path / "out.png")])
    assert rc == 1
    assert "avatar stylize:" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_stylize_writes_a_prepared_avatar_folder(pass_through, tmp_path):
    from avatars.folder import read_folder
    from avatars.prepare import prepare
    from avatars.studio.make import make_from_photo

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    photo = tmp_path / "me.png"
    cv2.imwrite(str(photo), cv2.cvtColor(draw_default_host(256, 256).image, cv2.COLOR_RGB2BGR))
    buf = io.StringIO()
    made = make_from_photo(photo, Stylizer(pass_through, "cpu"), tmp_path / "anime", style="anime", face_size=256,
                           report=ConsoleReport(buf))
    folder = tmp_path / "anime"
    assert made.picture == folder / "host.png" and (folder / "studio" / "before_style.png").is_file()
    src = tomllib.loads((folder / "avatar.toml").read_text(encoding="utf-8"))["source"]
    assert src["kind"] == "stylize" and src["style"] == "anime" and src["style_weights"] == str(pass_through)
    assert src["photo"] == str(photo.resolve()) and src["style_face_score"] > 0
    assert read_folder(folder).media == folder / "host.png"
    assert prepare(folder).cached and made.prepared.detected == 1
    assert "stylized: score" in buf.getvalue()


def test_create_then_stylize_keeps_both_pictures(pass_through, tmp_path):
    from avatars.studio.make import PromptOptions, make_from_prompt
    from tests.fakes.drawn_portraits import DrawnPortraits

    made = make_from_prompt(DrawnPortraits(), PromptOptions("a host", seed=2, candidates=1, steps=1), tmp_path / "h",
                            stylizer=Stylizer(pass_through, "cpu"), style="anime", face_size=256,
                            report=ConsoleReport(io.StringIO()))
    before = cv2.imread(str(tmp_path / "h" / "studio" / "before_style.png"))
    after = cv2.imread(str(made.picture))
    assert before.shape == after.shape and np.abs(before.astype(int) - after.astype(int)).mean() > 5
    assert made.source["style"] == "anime" and made.source["seed"] == 2
