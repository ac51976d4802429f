"""The generator behind one interface, whichever runtime and precision runs it.

A ``Generator`` takes mel windows (B, 1, 80, 16) and face inputs (B or 1, 6, 96, 96), both exactly
as ``avatars.wav2lip.official`` prepares them, and returns the network's output (B, 3, 96, 96) in
[0, 1]. A still portrait's face input is the same for every frame, so ``static_face`` prepares it
once (the torch backend keeps the face encoder's output and broadcasts it over the batch).

Which one runs by default is a property of the device, chosen by ``choose``:

| device | default | why |
| --- | --- | --- |
| CUDA | torch, float16 | tensor cores; paste-back and motion stay on the GPU too |
| CPU with native bf16 (AMX, AVX512-BF16) | torch, bfloat16, channels-last | 77 vs 43 frames/s for ONNX fp32 (EPYC, 2 threads) |
| other CPUs | ONNX Runtime, int8 (static, per-channel) | 1.4x ONNX fp32 and 1.8x torch fp32 CPU time per frame (Xeon, AVX512 without VNNI) |

int8 is quantised once per checkpoint (calibrated on the avatar's face and a synthetic voice) and
cached under ``$STREAMER_CACHE/wav2lip``; without onnxruntime the CPU falls back to torch float32.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnx")
PRECISIONS = ("auto", "float32", "bfloat16", "float16", "int8")


class Generator(Protocol):
    label: str
    """backend-precision, for logs and benchmarks (``torch-bfloat16``, ``onnx-int8``)."""
    device: str

    def static_face(self, face: np.ndarray) -> Any:
        """Prepare a (1, 6, 96, 96) face input that every frame of a batch shares."""
        ...

    def __call__(self, audio: np.ndarray, face: Any) -> Any:
        """(B, 1, 80, 16) mel windows and faces (a ``static_face`` or a (B, 6, 96, 96) array) ->
        (B, 3, 96, 96) in [0, 1]: a NumPy array, or a tensor on the device for a GPU backend."""
        ...


@dataclass(frozen=True)
class Choice:
    backend: str
    precision: str
    device: str


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def native_bf16() -> bool:
    """True where bf16 matrix maths runs in hardware (AMX or AVX512-BF16), not emulated in fp32."""
    return bool(cpu_flags() & {"amx_bf16", "avx512_bf16"})


def _has_onnxruntime() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


def choose(device: str = "auto", backend: str = "auto", precision: str = "auto") -> Choice:
    """The fastest acceptable generator for this machine, unless config pins one."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if backend == "auto":
        if device == "cpu" and precision in ("auto", "int8", "float32") and not native_bf16() and _has_onnxruntime():
            backend = "onnx"
        else:
            backend = "torch"
    if precision == "auto":
        if backend == "onnx":
            precision = "int8"
        elif device.startswith("cuda"):
            precision = "float16"
        elif device == "cpu" and native_bf16():
            precision = "bfloat16"
        else:
            precision = "float32"
    if backend == "onnx" and precision not in ("float32", "int8"):
        raise ValueError(f"ONNX Runtime runs float32 or int8, not {precision}")
    if backend == "onnx":
        device = "cpu"
    return Choice(backend, precision, device)


class TorchGenerator:
    def __init__(self, model: Any, device: str, precision: str) -> None:
        import torch

        self.device, self.precision = device, precision
        self.label = f"torch-{precision}"
        model = model.to(device)
        if precision == "float16":
            model = model.half()
        self.channels_last = device == "cpu" and precision == "bfloat16"
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model

    def tensor(self, array: np.ndarray) -> Any:
        import torch

        t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(self.device)
        if self.precision == "float16":
            t = t.half()
        if self.channels_last and t.dim() == 4:
            t = t.contiguous(memory_format=torch.channels_last)
        return t

    def _context(self) -> contextlib.ExitStack:
        import torch

        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self.precision == "bfloat16":
            stack.enter_context(torch.autocast("cpu" if self.device == "cpu" else self.device, dtype=torch.bfloat16))
        return stack

    def static_face(self, face: np.ndarray) -> Any:
        with self._context():
            return self.model.encode_face(self.tensor(face))

    def __call__(self, audio: np.ndarray, face: Any) -> Any:
        with self._context():
            a = self.tensor(audio)
            if isinstance(face, list):  # a static face's encoder features, shared by the batch
                out = self.model.decode(a, face, broadcast=True)
            else:
                out = self.model(a, self.tensor(face))
        if self.device == "cpu":
            return out.float().numpy()
        return out.float()  # stays on the device: paste-back and motion run there too


def onnx_cache_dir() -> Path:
    root = os.environ.get("STREAMER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "streamer")
    return Path(root) / "wav2lip"


def _checkpoint_key(checkpoint: Path) -> str:
    st = checkpoint.stat()
    return hashlib.sha256(f"{checkpoint.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]


class OnnxGenerator:
    def __init__(self, path: str | Path, threads: int | None = None, label: str = "onnx-float32") -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.label, self.device = label, "cpu"

    def static_face(self, face: np.ndarray) -> Any:
        return np.ascontiguousarray(face, dtype=np.float32)

    def __call__(self, audio: np.ndarray, face: Any) -> np.ndarray:
        faces = face if len(face) == len(audio) else np.repeat(face, len(audio), axis=0)
        return self.session.run(None, {"audio": np.ascontiguousarray(audio, dtype=np.float32),
                                       "face": np.ascontiguousarray(faces, dtype=np.float32)})[0]


def build(model: Any, checkpoint: Path, choice: Choice, threads: int | None = None,
          calibration: tuple[np.ndarray, np.ndarray] | None = None) -> Generator:
    """The generator for ``choice``; ONNX graphs are exported (and quantised) once, then cached."""
    if choice.backend == "torch":
        return TorchGenerator(model, choice.device, choice.precision)
    from avatars.wav2lip.onnx import export_onnx, quantize_int8

    cache = onnx_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    key = _checkpoint_key(checkpoint)
    fp32 = cache / f"{checkpoint.stem}-{key}.onnx"
    if not fp32.is_file():
        log.info("exporting Wav2Lip to ONNX once", extra={"file": str(fp32)})
        export_onnx(model, fp32)
    if choice.precision == "float32":
        return OnnxGenerator(fp32, threads)
    int8 = cache / f"{checkpoint.stem}-{key}.int8.onnx"
    if not int8.is_file():
        log.info("quantising Wav2Lip to int8 once (a minute on 2 cores)", extra={"file": str(int8)})
        quantize_int8(fp32, int8, calibration)
    return OnnxGenerator(int8, threads, label="onnx-int8")
