"""The user's Stable Diffusion weights: find them, tell what they are, load them offline.

Two shapes are accepted, both as the user has them on disk and never fetched from a hub:

- a diffusers folder (``model_index.json`` with ``unet/``, ``vae/``, ``text_encoder/``, ...), loaded
  with ``from_pretrained(..., local_files_only=True)``;
- a single ``.safetensors`` / ``.ckpt`` checkpoint (the original LDM layout). diffusers builds the
  pipeline from the matching diffusers configs (JSON + tokenizer). Those are normally fetched from
  the Hub; here they come from ``[studio] sd_config`` (a diffusers folder of the same architecture, its
  weights not needed) or from the Hugging Face cache when it already holds them.

The family (SD 1.x/2.x or SDXL) is read from ``model_index.json`` or from the checkpoint's tensor
names before anything heavy is loaded, so a wrong file fails in a second with a message saying what
it is and what to use instead.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from avatars.studio import INSTALL_HINT, StudioError

Family = Literal["sd", "sdxl"]
PIPELINES: dict[str, Family] = {"StableDiffusionPipeline": "sd", "StableDiffusionXLPipeline": "sdxl"}
CONFIG_REPOS = {"sd1": "stable-diffusion-v1-5/stable-diffusion-v1-5", "sd2": "stabilityai/stable-diffusion-2-1",
                "sdxl": "stabilityai/stable-diffusion-xl-base-1.0"}
"""Where diffusers would fetch a single file's configs from (looked up in the local cache only)."""
SINGLE_FILE_EXT = {".safetensors", ".ckpt", ".pt", ".pth", ".bin"}
WEIGHT_GLOBS = ("*.safetensors", "*.bin")
NATIVE_SIZE = {"sd": 512, "sdxl": 1024}


@dataclass(frozen=True)
class ModelSource:
    path: Path
    form: Literal["folder", "single_file"]
    family: Family
    config: Path | None = None
    """For a single file: the diffusers folder whose configs and tokenizer build the pipeline."""
    variant: str | None = None
    """``fp16`` when a folder holds only ``*.fp16.safetensors`` weights."""

    @property
    def description(self) -> str:
        name = {"sd": "Stable Diffusion 1.x/2.x", "sdxl": "Stable Diffusion XL"}[self.family]
        return f"{name} ({'diffusers folder' if self.form == 'folder' else 'single file'}) {self.path}"


def cache_dir() -> Path:
    root = os.environ.get("STREAMER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "streamer")
    return Path(root) / "studio"


def default_model_path() -> Path:
    return cache_dir() / "sd"


def locate_model(path: str | Path | None, config: str | Path | None = None) -> ModelSource:
    """Inspect ``path`` (or the default location) without loading weights; StudioError says what is wrong."""
    p = Path(path).expanduser() if path else default_model_path()
    if not p.exists():
        how = ("pass --model PATH (a diffusers folder holding model_index.json, or one .safetensors checkpoint) "
               f"or set [studio] model; without one the studio looks in {default_model_path()}")
        raise StudioError(f"no Stable Diffusion model at {p}: {how}")
    if p.is_dir():
        return _inspect_folder(p)
    return _inspect_single_file(p, Path(config).expanduser() if config else None)


def _inspect_folder(p: Path) -> ModelSource:
    index = p / "model_index.json"
    if not index.is_file():
        singles = sorted(f.name for f in p.iterdir() if f.suffix in {".safetensors", ".ckpt"})
        hint = f"; it holds {', '.join(singles[:3])}: pass that file as --model" if singles else ""
        raise StudioError(f"{p} is not a diffusers model folder (no model_index.json){hint}. Point --model at the "
                          "folder that holds model_index.json (Stable Diffusion 1.5 or SDXL), or at one "
                          ".safetensors checkpoint")
    try:
        spec = json.loads(index.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StudioError(f"{index} is not valid JSON ({e}): the download is damaged; fetch the model again") from None
    cls = str(spec.get("_class_name", "?"))
    family = PIPELINES.get(cls)
    if family is None:
        raise StudioError(f"{p} holds a {cls}, not Stable Diffusion 1.5 or SDXL text-to-image weights: the studio "
                          "needs one of those (e.g. stable-diffusion-v1-5 or stable-diffusion-xl-base-1.0)")
    variant = _check_components(p, spec)
    return ModelSource(p, "folder", family, variant=variant)


def _check_components(p: Path, spec: dict[str, Any]) -> str | None:
    """Every listed component has its folder; the networks have weights. Returns the weights variant."""
    fp16_only = False
    for name, value in spec.items():
        if name.startswith("_") or not isinstance(value, list) or value[0] is None:
            continue
        sub = p / name
        if not sub.is_dir():
            raise StudioError(f"{p}: model_index.json lists {name} but the folder {sub} is missing: the download is "
                              "incomplete; fetch the whole model folder again")
        if name in ("unet", "vae", "text_encoder", "text_encoder_2"):
            weights = [f for g in WEIGHT_GLOBS for f in sub.glob(g)]
            if not weights:
                raise StudioError(f"{sub} has no weights (diffusion_pytorch_model.safetensors or model.safetensors): "
                                  "the download is incomplete; fetch it again")
            fp16_only = fp16_only or all(".fp16." in f.name for f in weights)
    return "fp16" if fp16_only else None


def _checkpoint_keys(p: Path) -> list[str]:
    if p.suffix == ".safetensors":
        try:
            from safetensors import safe_open
        except ImportError:
            raise StudioError(f"safetensors is not installed: {INSTALL_HINT}") from None
        try:
            with safe_open(str(p), framework="pt") as f:
                return list(f.keys())
        except Exception as e:  # safetensors raises its own error types for a damaged header
            raise StudioError(f"{p} is not a readable .safetensors file ({e}): the file is damaged or not weights") from None
    try:
        import torch
    except ImportError:
        raise StudioError(f"torch is not installed: {INSTALL_HINT}") from None
    try:
        sd = torch.load(str(p), map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # a pickle error, a zip error, a non-tensor pickle: all mean "not a checkpoint"
        raise StudioError(f"{p} is not a PyTorch checkpoint this can read ({type(e).__name__}): use the model's "
                          ".safetensors file") from None
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    return [str(k) for k in sd] if isinstance(sd, dict) else []


def checkpoint_family(keys: list[str]) -> str | None:
    """``sd1``, ``sd2`` or ``sdxl`` from the LDM tensor names, or None for anything else."""
    names = set(keys)
    if any(k.startswith("conditioner.embedders.1.") for k in names):
        return "sdxl"
    if not any(k.startswith("model.diffusion_model.input_blocks.") for k in names):
        return None
    return "sd2" if any(k.startswith("cond_stage_model.model.") for k in names) else "sd1"


def _inspect_single_file(p: Path, config: Path | None) -> ModelSource:
    if p.suffix.lower() not in SINGLE_FILE_EXT:
        raise StudioError(f"{p} is not a model checkpoint (.safetensors or .ckpt) nor a diffusers folder")
    keys = _checkpoint_keys(p)
    kind = checkpoint_family(keys)
    if kind is None:
        sample = ", ".join(sorted(keys)[:3]) or "no tensors"
        raise StudioError(f"{p} is not a Stable Diffusion 1.5/SDXL checkpoint (its tensors are named like {sample}): "
                          "use the text-to-image model's .safetensors file or its diffusers folder")
    family: Family = "sdxl" if kind == "sdxl" else "sd"
    folder = config or _cached_config(CONFIG_REPOS[kind])
    if folder is None:
        raise StudioError(
            f"{p} is a single-file {kind.upper()} checkpoint: building it needs the diffusers configs of "
            f"{CONFIG_REPOS[kind]} (JSON and tokenizer files, no weights), which are not in the Hugging Face cache and "
            "are never downloaded here. Pass --sd-config DIR (or [studio] sd_config) with a diffusers folder of "
            "the same architecture, or use the model's diffusers folder as --model")
    if config is not None:
        cfg_source = _inspect_folder_configs(config)
        if cfg_source != family:
            raise StudioError(f"model config {config} is for {cfg_source.upper()} but {p} is an {kind.upper()} "
                              "checkpoint: use a config folder of the same architecture")
    return ModelSource(p, "single_file", family, config=folder)


def _inspect_folder_configs(p: Path) -> Family:
    index = p / "model_index.json"
    if not index.is_file():
        raise StudioError(f"model config {p} is not a diffusers folder (no model_index.json)")
    cls = str(json.loads(index.read_text(encoding="utf-8")).get("_class_name", "?"))
    if cls not in PIPELINES:
        raise StudioError(f"model config {p} describes a {cls}, not Stable Diffusion 1.5 or SDXL")
    return PIPELINES[cls]


def _cached_config(repo: str) -> Path | None:
    """The Hugging Face cache's snapshot of ``repo`` when it holds model_index.json (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo, "model_index.json")
    return Path(found).parent if isinstance(found, str) else None


def choose_device(want: str) -> tuple[str, Any]:
    """(device, dtype): CUDA with float16 when present (or asked for), else CPU with float32."""
    import torch

    dev = ("cuda" if torch.cuda.is_available() else "cpu") if want == "auto" else want
    if dev.startswith("cuda") and not torch.cuda.is_available():
        raise StudioError("CUDA was asked for but torch sees no GPU (a CPU build of torch, or no driver): use "
                          "--device cpu, or install the CUDA build of torch")
    if not (dev == "cpu" or dev.startswith("cuda")):
        raise StudioError(f"unknown device {want!r}: use auto, cpu or cuda")
    return dev, torch.float16 if dev.startswith("cuda") else torch.float32


def _import_diffusers() -> Any:
    """diffusers, with our own progress replacing the libraries' progress bars and load chatter
    (transformers is quietened first: importing diffusers already logs through it)."""
    try:
        from transformers.utils import logging as tlog

        tlog.set_verbosity_error()
        tlog.disable_progress_bar()
        import diffusers
        from diffusers.utils import logging as dlog
    except ImportError:
        raise StudioError(f"diffusers is not installed: {INSTALL_HINT}") from None
    dlog.set_verbosity_error()
    dlog.disable_progress_bar()
    return diffusers


def load_pipeline(source: ModelSource, device: str = "auto") -> tuple[Any, str]:
    """The text-to-image pipeline on its device, with DPM++ 2M Karras (good portraits in ~25 steps).
    Returns (pipeline, device)."""
    diffusers = _import_diffusers()
    dev, dtype = choose_device(device)
    cls = diffusers.StableDiffusionXLPipeline if source.family == "sdxl" else diffusers.StableDiffusionPipeline
    try:
        if source.form == "folder":
            pipe = cls.from_pretrained(str(source.path), local_files_only=True, variant=source.variant)
        else:
            pipe = cls.from_single_file(str(source.path), config=str(source.config), local_files_only=True)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError) as e:
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise StudioError(f"cannot load {source.description}: {first}. The weights do not match their configs (a "
                          "different architecture, or a damaged download): use Stable Diffusion 1.5 or SDXL "
                          "weights as published") from None
    pipe.scheduler = diffusers.DPMSolverMultistepScheduler.from_config(
        pipe.scheduler.config, algorithm_type="dpmsolver++", use_karras_sigmas=True)
    pipe.set_progress_bar_config(disable=True)
    pipe.to(dev, dtype)  # cast after loading: the dtype keyword of from_pretrained changed name across versions
    return pipe, dev
