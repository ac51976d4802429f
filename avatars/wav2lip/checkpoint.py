"""Loading Wav2Lip weights from the official checkpoint format, with a clear error for anything else.

The released files are ``torch.save({"state_dict": ..., "optimizer": ..., "global_step": ...,
"global_epoch": ...})`` of a DataParallel model, so every key carries a ``module.`` prefix. We read
the state dict (or a bare one), strip the prefix, and refuse a truncated file, a checkpoint of
another network (the SyncNet expert, the visual-quality discriminator, a higher-resolution fork), a
missing key or a mismatched shape with a message naming the file and what is wrong. BatchNorm's
``num_batches_tracked`` counters, which older PyTorch versions did not save and inference never
reads, may be absent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

WEIGHTS_HINT = ("download the official Wav2Lip checkpoint (wav2lip_gan.pth or wav2lip.pth) and put it at {path} "
                "(or set [avatar] wav2lip_checkpoint); the procedural renderer is used meanwhile")


class CheckpointError(RuntimeError):
    pass


def _read(path: Path) -> dict[str, Any]:
    import torch

    if not path.is_file():
        raise CheckpointError(f"Wav2Lip weights not found: {WEIGHTS_HINT.format(path=path)}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty (an interrupted download?): download it again")
    try:
        raw = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        reason = str(e).splitlines()[0][:200]
        hint = ("the file is truncated or corrupt (an interrupted download?): download it again"
                if "zip" in reason.lower() or "eof" in reason.lower() or "central directory" in reason.lower()
                else "it is not a torch checkpoint of plain tensors")
        raise CheckpointError(f"{path}: cannot read it as a torch checkpoint: {hint} ({type(e).__name__}: {reason})") from None
    state = raw.get("state_dict", raw) if isinstance(raw, dict) else None
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise CheckpointError(f"{path}: expected a state dict or {{'state_dict': ...}}, got {type(raw).__name__}")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _which_network(keys: set[str]) -> str:
    """A guess at what a foreign checkpoint is, for the error message."""
    if any(k.startswith("face_encoder.") for k in keys) and any(k.startswith("audio_encoder.") for k in keys):
        return "the SyncNet lip-sync expert (lipsync_expert.pth), not the generator"
    if any(k.startswith("binary_pred") for k in keys):
        return "the visual-quality discriminator (visual_quality_disc.pth), not the generator"
    if any(k.startswith("face_encoder_blocks.7") or k.startswith("face_decoder_blocks.7") for k in keys):
        return "a higher-resolution Wav2Lip fork (more blocks than the 96x96 generator)"
    return "not the Wav2Lip 96x96 generator"


def check_state(path: Path, state: dict[str, Any], expected: dict[str, Any]) -> None:
    """Raise ``CheckpointError`` unless ``state`` has exactly the generator's tensors and shapes."""
    keys = set(state)
    unexpected = sorted(keys - set(expected))
    missing = [k for k in expected if k not in keys and not k.endswith("num_batches_tracked")]
    if unexpected or missing:
        what = _which_network(keys)
        first = f"unexpected key {unexpected[0]!r}" if unexpected else f"missing key {missing[0]!r}"
        raise CheckpointError(f"{path}: {first} ({len(unexpected)} unexpected, {len(missing)} missing): this is "
                              f"{what}; use wav2lip_gan.pth or wav2lip.pth")
    for key, tensor in expected.items():
        if key in state and tuple(state[key].shape) != tuple(tensor.shape):
            raise CheckpointError(f"{path}: key {key!r} has shape {tuple(state[key].shape)}, the Wav2Lip generator "
                                  f"expects {tuple(tensor.shape)}")


def load_wav2lip(path: str | Path, device: str = "cpu") -> Any:
    try:
        import torch  # noqa: F401

        from avatars.wav2lip.model import Wav2Lip
    except ImportError:
        raise CheckpointError("torch is not installed: pip install torch==2.13.0 (CPU) or pip install "
                              "'streamer[wav2lip]'") from None
    path = Path(path)
    state = _read(path)
    model = Wav2Lip()
    expected = model.state_dict()
    check_state(path, state, expected)
    for key in expected:
        state.setdefault(key, expected[key])  # num_batches_tracked, unused at inference
    model.load_state_dict(state)
    return model.eval().to(device)


def save_official_format(model: Any, path: str | Path) -> None:
    """Save like the released checkpoints: DataParallel 'module.' keys inside a training dict."""
    import torch

    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "optimizer": {}, "global_step": 0, "global_epoch": 0}, str(path))
