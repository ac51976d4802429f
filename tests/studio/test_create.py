"""``streamer avatar create``: the real diffusers pipeline (tiny random SD 1.5 / SDXL), face-score
selection (drawn stand-in faces), the avatar folder, and every bad input named and cleaned up."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="needs the studio extra: pip install -e '.[studio]'")

from avatars.studio import StudioError  # noqa: E402
from avatars.studio.composition import compose  # noqa: E402
from avatars.studio.create import NoFaceError, create_candidates  # noqa: E402
from avatars.studio.make import PromptOptions, make_from_prompt  # noqa: E402
from avatars.studio.progress import ConsoleReport  # noqa: E402
from avatars.studio.sd_model import locate_model  # noqa: E402
from tests.fakes.drawn_portraits import DrawnPortraits  # noqa: E402

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def request(prompt: str = "a smiling woman", steps: int = 3, size: int = 64):
    return compose(prompt, width=size, height=size, steps=steps, guidance=5.0)


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# --- the real pipeline -------------------------------------------------------------------------------

def test_tiny_sd15_generates_rgb_at_the_requested_size_with_progress_per_step(tiny_portraits):
    steps = []
    out = tiny_portraits.generate(request(steps=4), 7, lambda s, n: steps.append((s, n)))
    assert out.image.shape == (64, 64, 3) and out.image.dtype == np.uint8
    assert out.image.std() > 1, "a picture, not a flat fill"
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert tiny_portraits.source.family == "sd" and tiny_portraits.device == "cpu"


def test_same_seed_same_picture_other_seed_other_picture(tiny_portraits):
    a = tiny_portraits.generate(request(), 42, lambda *_: None).image
    b = tiny_portraits.generate(request(), 42, lambda *_: None).image
    c = tiny_portraits.generate(request(), 43, lambda *_: None).image
    assert np.array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 1


def test_candidate_i_is_reproduced_alone_from_seed_plus_i(tiny_portraits):
    with pytest.raises(NoFaceError) as err:
        create_candidates(tiny_portraits, request(), 100, 3)
    cands = err.value.candidates
    assert [c.seed for c in cands] == [100, 101, 102]
    alone = tiny_portraits.generate(request(), 102, lambda *_: None).image
    assert np.array_equal(cands[2].image, alone)


def test_sdxl_folder_is_recognised_and_generates(tiny_sdxl):
    from avatars.studio.portraits import DiffusersPortraits

    source = locate_model(tiny_sdxl)
    assert source.family == "sdxl" and source.form == "folder"
    sdxl = DiffusersPortraits(source, "cpu")
    assert sdxl.native_size == (1024, 1024)
    seen = []
    out = sdxl.generate(request(steps=2), 1, lambda s, n: seen.append(s))
    assert out.image.shape == (64, 64, 3) and seen == [1, 2]


def test_estimate_is_measured_and_said_before_the_work(tiny_portraits):
    est = tiny_portraits.estimate(request())
    assert est.step_s > 0 and est.decode_s > 0
    buf = io.StringIO()
    ConsoleReport(buf).estimate(est, 25, 4, "cpu")
    assert "4 candidate(s) x 25 steps on the CPU: about" in buf.getvalue()


def test_a_prompt_that_yields_no_face_fails_clearly_and_leaves_nothing(tiny_portraits, tmp_path):
    buf = io.StringIO()
    with pytest.raises(NoFaceError) as err:
        make_from_prompt(tiny_portraits, PromptOptions("a smiling woman", seed=5, candidates=2, steps=2, width=64,
                                                       height=64), tmp_path / "host.png", report=ConsoleReport(buf))
    msg = str(err.value)
    assert "none of the 2 candidates has a face" in msg and "seeds 5-6" in msg and "--seed" in msg
    assert not (tmp_path / "host").exists() and leftovers(tmp_path) == []
    log = buf.getvalue()
    assert "candidate 2/2" in log and "step 2/2" in log and "no face found" in log


# --- selection by face score and the avatar folder ---------------------------------------------------

def test_the_best_face_is_kept_and_every_score_reported():
    drawn = DrawnPortraits()
    creation = create_candidates(drawn, request(steps=2, size=256), 3, 3)  # seeds 3 (noise), 4 (left), 5 (centred)
    noise, left, centred = creation.candidates
    assert noise.score is None
    assert left.score is not None and centred.score is not None
    assert centred.score.value > left.score.value and centred.score.centred > 0.9 > left.score.centred
    assert creation.best is centred
    assert "no face found" in noise.summary() and "score" in centred.summary()


def test_create_writes_a_prepared_avatar_folder_with_its_source(tmp_path):
    from avatars.folder import read_folder
    from avatars.portrait import load_avatar
    from avatars.prepare import prepare

    buf = io.StringIO()
    made = make_from_prompt(DrawnPortraits(), PromptOptions("a friendly host, short hair", negative="hat", seed=3,
                                                            candidates=3, steps=2),
                            tmp_path / "avatars" / "mia", report=ConsoleReport(buf))
    folder = tmp_path / "avatars" / "mia"
    assert made.folder == folder and made.picture == folder / "host.png"
    assert sorted(p.name for p in (folder / "studio" / "candidates").iterdir()) == [
        "01-seed3.png", "02-seed4.png", "03-seed5.png"]
    spec = tomllib.loads((folder / "avatar.toml").read_text(encoding="utf-8"))
    src = spec["source"]
    assert spec["media"] == "host.png" and spec["green_screen"] is False
    assert src["prompt"] == "a friendly host, short hair" and src["seed"] == 5 and src["model"] == "drawn stand-in"
    assert src["negative_prompt"] == "hat" and "hat" in src["full_negative_prompt"]
    assert [c["seed"] for c in src["candidates"]] == [3, 4, 5] and "score" not in src["candidates"][0]
    assert src["face_score"] == max(c.get("score", 0) for c in src["candidates"])
    assert read_folder(folder).media == folder / "host.png"
    again = prepare(folder)  # what `streamer avatar prepare` runs: already cached by create
    assert again.cached and again.detected == 1
    assert load_avatar(str(folder), 320, 180).image.shape == (180, 320, 3)
    assert "kept candidate 3 (seed 5)" in buf.getvalue()
    assert leftovers(folder.parent) == []


def test_green_background_is_asked_for_and_recorded(tmp_path):
    drawn = DrawnPortraits()
    make_from_prompt(drawn, PromptOptions("a host", seed=2, candidates=1, steps=1, background="green"),
                     tmp_path / "g", report=ConsoleReport(io.StringIO()))
    req = drawn.requests[0][0]
    assert "green screen" in req.prompt and "green clothes" in req.negative
    spec = tomllib.loads((tmp_path / "g" / "avatar.toml").read_text(encoding="utf-8"))
    assert spec["green_screen"] is True and spec["source"]["background"] == "green"


def test_chinese_prompt_is_kept_beside_its_english_model_prompt(tmp_path):
    from avatars.studio.prompt_writer import write_prompt

    draft = write_prompt("年轻的女主播，长头发，微笑，穿白色衬衫", "template")
    drawn = DrawnPortraits()
    make_from_prompt(drawn, PromptOptions(draft.prompt, seed=2, candidates=1, steps=1), tmp_path / "小乔",
                     said="年轻的女主播，长头发，微笑，穿白色衬衫", draft=draft, report=ConsoleReport(io.StringIO()))
    sent = drawn.requests[0][0].prompt
    assert sent.startswith("portrait of a young woman, long hair, smiling, white shirt")
    assert not any("\u4e00" <= c <= "\u9fff" for c in sent)
    spec = tomllib.loads((tmp_path / "小乔" / "avatar.toml").read_text(encoding="utf-8"))
    assert spec["name"] == "小乔" and spec["source"]["said"] == "年轻的女主播，长头发，微笑，穿白色衬衫"
    assert spec["source"]["prompt_writer"] == "template"


def test_an_existing_avatar_is_kept_unless_forced(tmp_path):
    opts = PromptOptions("a host", seed=2, candidates=1, steps=1)
    quiet = ConsoleReport(io.StringIO())
    make_from_prompt(DrawnPortraits(), opts, tmp_path / "host.png", report=quiet)
    before = (tmp_path / "host" / "avatar.toml").read_text()
    with pytest.raises(StudioError, match="already exists.*--force"):
        make_from_prompt(DrawnPortraits(), opts, tmp_path / "host.png", report=quiet)
    assert (tmp_path / "host" / "avatar.toml").read_text() == before
    make_from_prompt(DrawnPortraits(), PromptOptions("another host", seed=5, candidates=1, steps=1),
                     tmp_path / "host.png", force=True, report=quiet)
    assert "another host" in (tmp_path / "host" / "avatar.toml").read_text()
    assert leftovers(tmp_path) == []


# --- bad model paths and weights -------------------------------------------------------------------

def test_missing_model_says_where_it_looked_and_what_to_pass(tmp_path):
    with pytest.raises(StudioError, match=r"no Stable Diffusion model at .*nope.*--model PATH"):
        locate_model(tmp_path / "nope")


def test_a_folder_that_is_not_a_diffusers_model(tmp_path, tiny_sd):
    with pytest.raises(StudioError, match=r"not a diffusers model folder \(no model_index.json\)"):
        locate_model(tiny_sd / "unet")  # a common slip: the unet subfolder
    other = tmp_path / "controlnet"
    other.mkdir()
    (other / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusion3Pipeline"}))
    with pytest.raises(StudioError, match="holds a StableDiffusion3Pipeline, not Stable Diffusion 1.5 or SDXL"):
        locate_model(other)


def test_an_incomplete_download_is_named(tmp_path, tiny_sd):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_sd, broken)
    (broken / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(StudioError, match=r"unet has no weights.*incomplete"):
        locate_model(broken)
    shutil.copy(tiny_sd / "unet" / "diffusion_pytorch_model.safetensors", broken / "unet")
    shutil.rmtree(broken / "vae")
    with pytest.raises(StudioError, match="lists vae but the folder .* is missing"):
        locate_model(broken)


def test_weights_of_another_architecture_fail_to_load_with_a_clear_message(tmp_path, tiny_sd):
    import shutil

    from avatars.studio.portraits import DiffusersPortraits
    from avatars.studio.tiny_models import build_tiny_sd

    other = build_tiny_sd(tmp_path / "wider", channels=(64, 128))
    mixed = tmp_path / "mixed"
    shutil.copytree(tiny_sd, mixed)
    shutil.copy(other / "unet" / "diffusion_pytorch_model.safetensors", mixed / "unet")
    with pytest.raises(StudioError, match=r"cannot load .*mixed.*do not match their configs"):
        DiffusersPortraits(locate_model(mixed), "cpu")


def test_single_files_that_are_not_stable_diffusion_are_refused(tmp_path):
    import torch
    from safetensors.torch import save_file

    lora = tmp_path / "lora.safetensors"
    save_file({"lora_unet_down.alpha": torch.zeros(1)}, str(lora))
    with pytest.raises(StudioError, match=r"not a Stable Diffusion 1.5/SDXL checkpoint .*lora_unet_down.alpha"):
        locate_model(lora)
    junk = tmp_path / "model.ckpt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(StudioError, match="not a PyTorch checkpoint"):
        locate_model(junk)
    with pytest.raises(StudioError, match="not a model checkpoint"):
        locate_model(Path(__file__))


def test_a_single_file_checkpoint_needs_local_configs_offline(tmp_path, tiny_sd, monkeypatch):
    import huggingface_hub.constants
    import torch
    from safetensors.torch import save_file

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    ckpt = tmp_path / "v1-5-pruned.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4, 3, 3),
               "cond_stage_model.transformer.text_model.final_layer_norm.weight": torch.zeros(4)}, str(ckpt))
    with pytest.raises(StudioError, match=r"single-file SD1 checkpoint.*stable-diffusion-v1-5.*--sd-config DIR"):
        locate_model(ckpt)
    source = locate_model(ckpt, tiny_sd)
    assert source.form == "single_file" and source.family == "sd" and source.config == tiny_sd
    xl = tmp_path / "xl.safetensors"
    save_file({"conditioner.embedders.1.model.ln_final.weight": torch.zeros(4)}, str(xl))
    with pytest.raises(StudioError, match="config .* is for SD but .* is an SDXL checkpoint"):
        locate_model(xl, tiny_sd)


def test_cuda_asked_for_without_a_gpu_says_so():
    import torch

    from avatars.studio.sd_model import choose_device

    if torch.cuda.is_available():
        dev, dtype = choose_device("auto")
        assert dev == "cuda" and dtype == torch.float16
    else:
        assert choose_device("auto") == ("cpu", torch.float32)
        with pytest.raises(StudioError, match="CUDA was asked for but torch sees no GPU"):
            choose_device("cuda")


# --- the command line ------------------------------------------------------------------------------

def test_cli_create_runs_the_pipeline_and_reports_a_faceless_prompt(tiny_sd, tmp_path, capsys):
    from streamer.cli import main

    rc = main(["avatar", "create", "--prompt", "年轻的女主播，短发，微笑", "--model", str(tiny_sd), "--size", "64x64",
               "--steps", "2", "--candidates", "2", "--seed", "9", "--device", "cpu", "-o",
               str(tmp_path / "avatars" / "new" / "host.png")])
    err = capsys.readouterr().err
    assert rc == 1
    assert "prompt (template): portrait of a young woman, short hair, smiling" in err
    assert "2 candidate(s) x 2 steps on the CPU: about" in err
    assert "candidate 1 (seed 9): no face found" in err and "candidate 2 (seed 10): no face found" in err
    assert "avatar create: none of the 2 candidates has a face" in err
    assert list(tmp_path.iterdir()) == []  # not even the folders made for -o


def test_cli_create_names_a_bad_model_before_doing_anything_slow(tmp_path, capsys):
    from streamer.cli import main

    rc = main(["avatar", "create", "--prompt", "a host", "--model", str(tmp_path / "missing"), "-o",
               str(tmp_path / "out")])
    assert rc == 1
    assert "avatar create: no Stable Diffusion model at" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
