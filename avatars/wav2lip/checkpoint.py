"""Loading Wav2Lip weights from the official checkpoint format.

The released files are ``torch.save({"state_dict": ..., "optimizer": ..., "global_step": ...,
"global_epoch": ...})`` of a DataParallel model, so every key carries a ``module.`` prefix. We read
the state dict (or a bare one), strip the prefix, and refuse mismatched shapes or missing keys with a
message naming the file and the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

WEIGHTS_HINT = ("download the official Wav2Lip checkpoint (wav2lip_gan.pth or wav2lip.pth) and put it at {path} "
                "(or set [avatar] wav2lip_checkpoint); the procedural renderer is used meanwhile")


class CheckpointError(RuntimeError):
    pass


def load_wav2lip(path: str | Path, device: str = "cpu") -> Any:
    try:
        import torch

        from avatars.wav2lip.model import Wav2Lip
    except ImportError:
        raise CheckpointError("torch is not installed: pip install torch==2.13.0 (CPU) or pip install "
                              "'streamer[wav2lip]'") from None
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Wav2Lip weights not found: {WEIGHTS_HINT.format(path=path)}")
    try:
        raw = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(e).__name__}: {e})") from None
    state = raw.get("state_dict", raw) if isinstance(raw, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict or {{'state_dict': ...}}, got {type(raw).__name__}")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    model = Wav2Lip()
    expected = model.state_dict()
    for key, tensor in expected.items():
        if key not in state:
            raise CheckpointError(f"{path}: missing key {key!r} (is this a Wav2Lip generator checkpoint?)")
        got = tuple(state[key].shape)
        if got != tuple(tensor.shape):
            raise CheckpointError(f"{path}: key {key!r} has shape {got}, the Wav2Lip generator expects "
                                  f"{tuple(tensor.shape)}")
    unexpected = sorted(set(state) - set(expected))
    if unexpected:
        raise CheckpointError(f"{path}: unexpected key {unexpected[0]!r} (and {len(unexpected) - 1} more): "
                              "this is not a Wav2Lip generator checkpoint (a discriminator, or SyncNet?)")
    model.load_state_dict(state)
    return model.eval().to(device)


def save_official_format(model: Any, path: str | Path) -> None:
    """Save like the released checkpoints: DataParallel 'module.' keys inside a training dict."""
    import torch

    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "optimizer": {}, "global_step": 0, "global_epoch": 0}, str(path))
