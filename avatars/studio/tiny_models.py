"""Tiny random Stable Diffusion 1.5 and SDXL pipelines of the real architectures, built from configs.

They run through exactly the code a user's weights do (saved with ``save_pretrained``, loaded with
``from_pretrained(local_files_only=True)``), in a fraction of a second, and draw noise: for tests,
``benchmarks/bench_studio.py`` and smoke checks, never for making a host. Nothing is downloaded: the
CLIP tokenizer is a real BPE tokenizer over a tiny vocabulary (letters and a few merges) written here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789,.'-"


def write_tokenizer_files(folder: Path) -> tuple[Path, Path]:
    """A tiny CLIP BPE vocabulary: every letter, alone and word-final, and a few merges."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in LETTERS:
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    merges = ["#version: 0.2", "t h", "a n", "e r", "o n", "i n"]
    for m in merges[1:]:
        vocab.setdefault(m.replace(" ", ""), len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("\n".join(merges) + "\n", encoding="utf-8")
    return folder / "vocab.json", folder / "merges.txt"


def _tokenizer(tmp: Path) -> Any:
    from transformers import CLIPTokenizer

    vocab, merges = write_tokenizer_files(tmp / "tok")
    return CLIPTokenizer(str(vocab), str(merges), model_max_length=77)


def _vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(block_out_channels=[32, 64], in_channels=3, out_channels=3, latent_channels=4,
                         down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                         norm_num_groups=32, sample_size=64)


def _text_config(vocab_size: int, projection: int = 0) -> Any:
    from transformers import CLIPTextConfig

    extra: dict[str, Any] = {"projection_dim": projection} if projection else {}
    return CLIPTextConfig(bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32, intermediate_size=37,
                          num_attention_heads=4, num_hidden_layers=2, vocab_size=vocab_size,
                          max_position_embeddings=77, layer_norm_eps=1e-5, **extra)


def _scheduler() -> Any:
    from diffusers import DDIMScheduler

    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                         set_alpha_to_one=False, steps_offset=1)


def build_tiny_sd(folder: Path, channels: tuple[int, int] = (32, 64), seed: int = 0) -> Path:
    """A random Stable Diffusion 1.x pipeline (UNet, VAE, CLIP text encoder, tokenizer), saved as a folder."""
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    tok = _tokenizer(folder.parent / f"{folder.name}-tok")
    unet = UNet2DConditionModel(block_out_channels=channels, layers_per_block=1, sample_size=8, in_channels=4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                                norm_num_groups=32)
    pipe = StableDiffusionPipeline(unet=unet, vae=_vae(), text_encoder=CLIPTextModel(_text_config(len(tok))),
                                   tokenizer=tok, scheduler=_scheduler(), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(str(folder))  # type: ignore[attr-defined]
    return folder


def build_tiny_sdxl(folder: Path, seed: int = 0) -> Path:
    """A random SDXL pipeline: two text encoders (the second with a projection), time-conditioned UNet."""
    import torch
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    tok = _tokenizer(folder.parent / f"{folder.name}-tok")
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=1, sample_size=8, in_channels=4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
                                use_linear_projection=True, addition_embed_type="text_time",
                                addition_time_embed_dim=8, transformer_layers_per_block=(1, 1),
                                projection_class_embeddings_input_dim=80, cross_attention_dim=64,
                                norm_num_groups=32)
    cfg = _text_config(len(tok), projection=32)
    pipe = StableDiffusionXLPipeline(unet=unet, vae=_vae(), text_encoder=CLIPTextModel(cfg),
                                     text_encoder_2=CLIPTextModelWithProjection(cfg), tokenizer=tok,
                                     tokenizer_2=tok, scheduler=_scheduler())
    pipe.save_pretrained(str(folder))  # type: ignore[attr-defined]
    return folder
