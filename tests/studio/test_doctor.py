"""``streamer doctor`` says what the studio has, and ``[studio]`` in a profile is read and validated."""

from __future__ import annotations

import pytest

from streamer.config import ConfigError, load_settings
from tests.conftest import write_config

torch = pytest.importorskip("torch", reason="needs the studio extra: pip install -e '.[studio]'")


def doctor_lines(settings) -> list[str]:
    from streamer.doctor import run_doctor

    lines: list[str] = []
    run_doctor(settings, out=lines.append)
    return [ln for ln in lines if "studio:" in ln or "fix:" in ln]


def line(lines: list[str], component: str) -> str:
    return next(ln for ln in lines if component in ln)


def test_doctor_reports_the_models_it_finds(tmp_path, tiny_sd):
    from avatars.studio.animegan import AnimeGANv2Generator

    weights = tmp_path / "face_paint_512_v2.pt"
    torch.save(AnimeGANv2Generator().state_dict(), weights)
    cfg = write_config(tmp_path, f'[studio]\nmodel = "{tiny_sd}"\nanime_weights = "{weights}"\n')
    lines = doctor_lines(load_settings(cfg, environ={}))
    assert line(lines, "studio: packages").split()[0] == "OK"
    sd = line(lines, "studio: SD model")
    assert sd.split()[0] == "OK" and "Stable Diffusion 1.x/2.x (diffusers folder)" in sd and str(tiny_sd) in sd
    anime = line(lines, "studio: AnimeGANv2 weights")
    assert anime.split()[0] == "OK" and str(weights) in anime
    assert "zh/en template" in line(lines, "studio: prompt writer")


def test_doctor_says_what_is_missing_and_what_is_wrong(tmp_path):
    bad = tmp_path / "wav2lip_gan.pth"
    torch.save({"audio_encoder.0.conv_block.0.weight": torch.zeros(1)}, bad)
    cfg = write_config(tmp_path, f'[studio]\nmodel = "{tmp_path / "nothing"}"\nanime_weights = "{bad}"\n')
    lines = doctor_lines(load_settings(cfg, environ={}))
    sd = line(lines, "studio: SD model")
    assert sd.split()[0] == "MISSING" and "no Stable Diffusion model at" in sd
    fix = lines[lines.index(sd) + 1]
    assert "fix:" in fix and "[studio] model" in fix
    anime = line(lines, "studio: AnimeGANv2 weights")
    assert anime.split()[0] == "MISSING" and "not an AnimeGANv2 generator" in anime


def test_studio_settings_validate_and_take_environment_overrides(tmp_path):
    cfg = write_config(tmp_path, '[studio]\nsteps = 30\nbackground = "green"\nwidth = 768\n')
    s = load_settings(cfg, environ={"STREAMER__STUDIO__CANDIDATES": "6"})
    assert (s.studio.steps, s.studio.background, s.studio.width, s.studio.candidates) == (30, "green", 768, 6)
    with pytest.raises(ConfigError, match=r"studio.width: .*multiple of 8"):
        load_settings(write_config(tmp_path, "[studio]\nwidth = 500\n"), environ={})
    with pytest.raises(ConfigError, match=r"studio.background"):
        load_settings(write_config(tmp_path, '[studio]\nbackground = "blue"\n'), environ={})
