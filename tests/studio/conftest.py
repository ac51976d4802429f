"""Studio fixtures: Stable Diffusion 1.5 and SDXL pipelines of the real architectures, tiny and random
(``avatars.studio.tiny_models``), saved as diffusers folders and loaded back by the studio's own loading
code, so every test goes through ``from_pretrained(local_files_only=True)`` as a user's folder does.
Nothing is downloaded: HF_HUB_OFFLINE=1.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from avatars.studio.tiny_models import build_tiny_sd, build_tiny_sdxl

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory) -> Path:
    pytest.importorskip("diffusers", reason="needs the studio extra: pip install -e '.[studio]'")
    return build_tiny_sd(tmp_path_factory.mktemp("sd") / "tiny-sd15")


@pytest.fixture(scope="session")
def tiny_sdxl(tmp_path_factory) -> Path:
    pytest.importorskip("diffusers", reason="needs the studio extra: pip install -e '.[studio]'")
    return build_tiny_sdxl(tmp_path_factory.mktemp("sdxl") / "tiny-sdxl")


@pytest.fixture(scope="session")
def tiny_portraits(tiny_sd):
    """The tiny SD 1.5 folder loaded through the studio's own loader, on the CPU."""
    from avatars.studio.portraits import DiffusersPortraits
    from avatars.studio.sd_model import locate_model

    return DiffusersPortraits(locate_model(tiny_sd), "cpu")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models on a shared, loaded CPU: one thread is ten times quicker than two fighting for cores."""
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """Each test prepares avatars into its own cache folder (no shared ~/.cache state)."""
    monkeypatch.setenv("STREAMER_CACHE", str(tmp_path / "cache"))
