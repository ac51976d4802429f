"""ONNX Runtime: export the generator once, and quantise it to int8 once (both cached by the caller).

int8 is static quantisation (``onnxruntime.quantization.quantize_static``): weights per channel,
activations as unsigned 8-bit with ranges calibrated on real inputs (the avatar's face input and mel
windows of a synthetic voice), QOperator format (QLinearConv), the fastest of the two formats on
the CPUs measured (``benchmarks/bench_wav2lip.py`` reports both speed and PSNR against float32).
Needs the ``onnx`` package for the export (``pip install 'streamer[wav2lip]'``).
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def export_onnx(model: Any, path: str | Path) -> Path:
    import torch

    path = Path(path)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    audio = torch.zeros(2, 1, 80, 16)
    face = torch.zeros(2, 6, 96, 96)
    export_model = model.float().eval().to("cpu", memory_format=torch.contiguous_format)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(export_model, (audio, face), str(tmp), input_names=["audio", "face"],
                          output_names=["face_out"], opset_version=17, dynamo=False,
                          dynamic_axes={"audio": {0: "batch"}, "face": {0: "batch"}, "face_out": {0: "batch"}})
    os.replace(tmp, path)
    return path


def synthetic_calibration(face: np.ndarray | None = None, frames: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Mel windows of a voiced, syllable-modulated tone with a little noise, and a face input."""
    from avatars.wav2lip.audio import SAMPLE_RATE, mel_windows, melspectrogram

    rng = np.random.default_rng(0)
    t = np.arange(int(SAMPLE_RATE * (frames / 25 + 0.3))) / SAMPLE_RATE
    voice = 0.4 * np.sin(2 * np.pi * 170 * t) * (0.55 + 0.45 * np.sin(2 * np.pi * 3.5 * t))
    voice += 0.15 * np.sin(2 * np.pi * 1200 * t) * (np.sin(2 * np.pi * 5.1 * t) > 0) + 0.01 * rng.standard_normal(t.size)
    windows = mel_windows(melspectrogram(voice), frames, 25.0)[:, None]
    if face is None:
        face = rng.uniform(0.2, 0.8, (1, 6, 96, 96)).astype(np.float32)
        face[:, :3, 48:] = 0.0
    return windows.astype(np.float32), face.astype(np.float32)


def quantize_int8(fp32: str | Path, out: str | Path, calibration: tuple[np.ndarray, np.ndarray] | None = None,
                  batch: int = 8) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    audio, face = calibration if calibration is not None else synthetic_calibration()
    feeds = [{"audio": audio[i:i + batch],
              "face": face[i:i + batch] if len(face) == len(audio) else np.repeat(face, len(audio[i:i + batch]), axis=0)}
             for i in range(0, len(audio), batch)]

    class Feeds(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    out = Path(out)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the quantiser's advice about pre-processing goes to the root logger
    try:
        quantize_static(str(fp32), str(tmp), Feeds(), quant_format=QuantFormat.QOperator, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    finally:
        quiet.setLevel(level)
    os.replace(tmp, out)
    return out
