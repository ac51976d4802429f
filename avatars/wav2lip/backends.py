"""The generator behind one interface, whichever runtime and precision runs it, and which one runs.

A ``Generator`` takes mel windows (B, 1, 80, 16) and face inputs (B or 1, 6, 96, 96), both exactly
as ``avatars.wav2lip.official`` prepares them, and returns the network's output (B, 3, 96, 96) in
[0, 1]. A still portrait's face input is the same for every frame, so ``static_face`` prepares it
once (the torch backend keeps the face encoder's output and broadcasts it over the batch).

``auto`` picks the fastest generator this device runs *that has been measured acceptable on this
checkpoint*: a lossy precision (float16, bfloat16, int8) is used only once its output has been
compared with float32 on the avatar's face (PSNR >= 35 dB). Candidates, fastest first:

| device | candidates | measured |
| --- | --- | --- |
| CUDA | torch float16, torch float32 | float16 is checked at load (a second) |
| CPU with native bf16 (AMX, AVX512-BF16) | torch bfloat16, ONNX float32, torch float32 | bf16 77, ONNX fp32 43 frames/s (EPYC, 2 threads); bf16 checked at load |
| other CPUs | ONNX int8, ONNX float32, torch float32 | CPU time per frame: int8 0.7x ONNX fp32, 0.55x torch fp32 (Xeon, AVX512 without VNNI) |

int8 needs a minute of quantisation, so it is measured by ``streamer avatar check`` (which records
the verdict), not at start-up: until then ONNX float32 runs. Verdicts are cached per checkpoint
under ``$STREAMER_CACHE/wav2lip``. Why not trust random weights: with the default random init the
network's output is a flat grey and every precision scores above 50 dB; with random weights given
realistic activations (``model.calibrate_random``) bf16 scores about 30 dB and int8 12-22 dB, because
a random network amplifies rounding far more than a trained one. Only the real checkpoint can say.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Callable
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

    @property
    def label(self) -> str:
        return f"{self.backend}-{self.precision}"

    @property
    def lossy(self) -> bool:
        return self.precision in ("float16", "bfloat16", "int8")


ACCEPTABLE_DB = 35.0
Measure = Callable[[Choice], float]
"""PSNR (dB) of a candidate's faces against float32's, on a fixed input."""


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


def candidates(device: str = "auto") -> list[Choice]:
    """What this device can run, fastest first."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device != "cpu":
        return [Choice("torch", "float16", device), Choice("torch", "float32", device)]
    onnx = _has_onnxruntime()
    if native_bf16():
        found = [Choice("torch", "bfloat16", "cpu")] + ([Choice("onnx", "float32", "cpu")] if onnx else [])
    else:
        found = [Choice("onnx", "int8", "cpu"), Choice("onnx", "float32", "cpu")] if onnx else []
    return found + [Choice("torch", "float32", "cpu")]


def choose(device: str = "auto", backend: str = "auto", precision: str = "auto", checkpoint: Path | None = None,
           measure: Measure | None = None) -> Choice:
    """The generator to run: pinned by config, else the fastest candidate measured acceptable on
    ``checkpoint`` (``measure`` is asked for the quick measurements; int8 is only taken once a
    recorded measurement says so)."""
    if backend not in BACKENDS or precision not in PRECISIONS:
        raise ValueError(f"unknown Wav2Lip backend/precision {backend}/{precision}")
    if backend == "onnx" and precision not in ("auto", "float32", "int8"):
        raise ValueError(f"ONNX Runtime runs float32 or int8, not {precision}")
    if backend == "onnx" and not _has_onnxruntime():
        raise ImportError("the onnx backend needs onnxruntime and onnx: pip install 'streamer[wav2lip]'")
    options = [c for c in candidates(device if backend != "onnx" else "cpu")
               if backend in ("auto", c.backend) and precision in ("auto", c.precision)]
    if not options:  # pinned to something the list does not rank (bf16 without native support, say)
        dev = "cpu" if backend == "onnx" else (device if device != "auto" else candidates()[0].device)
        return Choice("torch" if backend == "auto" else backend, "float32" if precision == "auto" else precision, dev)
    if precision != "auto" or len(options) == 1:
        return options[0]
    known = verdicts(checkpoint) if checkpoint is not None else {}
    for c in options:
        if not c.lossy:
            return c
        db = known.get(c.label)
        if db is None and measure is not None and c.precision != "int8":
            db = measure(c)
            if checkpoint is not None:
                record_verdict(checkpoint, c.label, db)
        if db is not None and db >= ACCEPTABLE_DB:
            return c
        if db is not None:
            log.info("lossy generator not accurate enough on this checkpoint", extra={"generator": c.label, "psnr_db": db})
    return options[-1]


def quality_file(checkpoint: Path) -> Path:
    return onnx_cache_dir() / f"{checkpoint.stem}-{_checkpoint_key(checkpoint)}.quality.json"


def verdicts(checkpoint: Path) -> dict[str, float]:
    """Recorded PSNRs (dB) against float32 of each lossy generator on this checkpoint."""
    import json

    try:
        data = json.loads(quality_file(checkpoint).read_text())
        return {str(k): float(v) for k, v in data.items()}
    except (OSError, ValueError, AttributeError):
        return {}


def record_verdict(checkpoint: Path, label: str, psnr_db: float) -> None:
    import json

    path = quality_file(checkpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = verdicts(checkpoint)
    data[label] = round(float(psnr_db), 2)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, sort_keys=True))
    os.replace(tmp, path)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)))


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


def measure_precision(model: Any, checkpoint: Path, choice: Choice, probe: tuple[np.ndarray, np.ndarray],
                      threads: int | None = None) -> float:
    """PSNR (dB) of ``choice``'s faces against float32's on ``probe`` (mel windows, face input)."""
    import copy

    from avatars.wav2lip.official import faces_from_output

    audio, face = probe
    audio = audio[:16]

    def faces(generator: Generator) -> np.ndarray:
        out = generator(audio, generator.static_face(face))
        return faces_from_output(out if isinstance(out, np.ndarray) else out.cpu().numpy())

    reference = faces(TorchGenerator(model, choice.device, "float32"))
    candidate = faces(build(copy.deepcopy(model), checkpoint, choice, threads, calibration=probe))
    db = psnr(reference, candidate)
    log.info("lossy generator measured against float32", extra={"generator": choice.label, "psnr_db": round(db, 1)})
    return db
