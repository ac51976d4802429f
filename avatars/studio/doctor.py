"""``streamer doctor``: what the avatar studio has (packages, Stable Diffusion weights, AnimeGANv2 weights).

None of it is essential: the host runs without the studio. Weights are inspected, not loaded: a
model folder's ``model_index.json`` and component folders, a checkpoint's tensor names, an AnimeGANv2
file's tensor layout (8 MB, read with torch when it is installed).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from avatars.studio import INSTALL_HINT, StudioError
from avatars.studio.sd_model import cache_dir, locate_model
from avatars.studio.stylize import STYLES
from streamer.doctor import Check


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def check_packages() -> Check:
    missing = [m for m in ("torch", "diffusers", "transformers", "safetensors") if not _has(m)]
    return Check("studio: packages", not missing, "diffusers, transformers, torch installed" if not missing
                 else f"missing {', '.join(missing)}", INSTALL_HINT)


def check_model(settings: Any) -> Check:
    st = settings.studio
    model = str(settings.resolve(st.model)) if st.model else None
    config = str(settings.resolve(st.sd_config)) if st.sd_config else None
    try:
        source = locate_model(model, config)
    except StudioError as e:
        return Check("studio: SD model", False, str(e)[:200] if model else f"none at {cache_dir() / 'sd'}",
                     "set [studio] model to a Stable Diffusion 1.5/SDXL diffusers folder or .safetensors "
                     f"(or put one at {cache_dir() / 'sd'}); needed only for streamer avatar create/describe")
    return Check("studio: SD model", True, source.description)


def _animegan_ok(path: Path) -> str:
    """'' when the file is an AnimeGANv2 generator (or torch is missing to tell), else what is wrong."""
    if not _has("torch"):
        return ""
    from avatars.studio.animegan import AnimeGANv2Generator, _read_state_dict, layout_problems

    try:
        return layout_problems(AnimeGANv2Generator(), _read_state_dict(path))
    except StudioError as e:
        return str(e)


def check_anime(settings: Any) -> Check:
    st = settings.studio
    places = [settings.resolve(st.anime_weights)] if st.anime_weights else []
    places += [cache_dir() / "animegan" / name for name in STYLES.values()]
    found = [p for p in dict.fromkeys(places) if p.is_file()]
    bad = {p: why for p in found if (why := _animegan_ok(p))}
    good = [p for p in found if p not in bad]
    fix = (f"put face_paint_512_v2.pt (bryandlee/animegan2-pytorch) in {cache_dir() / 'animegan'} or set "
           "[studio] anime_weights; needed only for --style / streamer avatar stylize")
    if bad:
        p, why = next(iter(bad.items()))
        return Check("studio: AnimeGANv2 weights", False, f"{p}: not an AnimeGANv2 generator ({why[:100]})", fix)
    detail = ", ".join(str(p) for p in good) if good else "none found"
    return Check("studio: AnimeGANv2 weights", bool(good), detail, fix)


def check_prompt_writer(settings: Any) -> Check:
    p = settings.persona
    llm = p.kind == "llm" or bool(p.base_url) or bool(os.environ.get("OPENAI_BASE_URL"))
    detail = (f"describe writes prompts with the LLM ({p.model})" if llm and _has("openai")
              else "describe writes prompts with the zh/en template (no LLM configured)")
    return Check("studio: prompt writer", True, detail)


def doctor_checks(settings: Any) -> list[Check]:
    return [check_packages(), check_model(settings), check_anime(settings), check_prompt_writer(settings)]
