"""The optional ONNX Runtime path: export the generator once (cached beside the weights), run it with
onnxruntime's CPU provider. Needs the ``onnx`` package for the export."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np


def export_onnx(model: Any, path: str | Path) -> Path:
    import torch

    path = Path(path)
    audio = torch.zeros(2, 1, 80, 16)
    face = torch.zeros(2, 6, 96, 96)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(model.float().eval(), (audio, face), str(path), input_names=["audio", "face"],
                          output_names=["face_out"], opset_version=17, dynamo=False,
                          dynamic_axes={"audio": {0: "batch"}, "face": {0: "batch"}, "face_out": {0: "batch"}})
    return path


class OnnxWav2Lip:
    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, audio: np.ndarray, face: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"audio": audio.astype(np.float32), "face": face.astype(np.float32)})[0]
