"""The Wav2Lip renderer: real-time lip-sync on a plain CPU.

It implements the same interface as the procedural renderer (poses from audio ahead of time, a frame
for any clock tick), so choosing it is one config line and interrupts work the same way. Idle
motion (blinks, breathing, sway) comes from the procedural layer on top of the pasted face.

Speed on CPU comes from four things:
- bfloat16 autocast with channels-last tensors where the processor has native bf16 (AVX512-BF16 or
  AMX), float32 elsewhere; float16 on CUDA;
- the face encoder runs once per avatar: a portrait's face input is the same for every frame, so
  its features (and the decoder's skip connections) are computed once and broadcast over the batch;
- frames whose audio is silent skip inference and keep the closed-mouth base face;
- audio is rendered in batches as a stream, so speech starts after the first batch, not the line.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from avatars.base import Avatar, MouthPose
from avatars.dsp import resample
from avatars.paste import PasteBack, wav2lip_box
from avatars.procedural import ProceduralRenderer
from avatars.wav2lip.audio import SAMPLE_RATE, mel_windows, melspectrogram
from avatars.wav2lip.checkpoint import load_wav2lip

log = logging.getLogger(__name__)


def pick_device(device: str = "auto") -> str:
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_precision(device: str, precision: str = "auto") -> str:
    import torch

    if precision != "auto":
        return precision
    if device == "cuda":
        return "float16"
    if device == "cpu":
        try:
            if torch.ops.mkldnn._is_mkldnn_bf16_supported():
                return "bfloat16"
        except (AttributeError, RuntimeError):
            pass
    return "float32"


class Wav2LipRenderer(ProceduralRenderer):
    name = "wav2lip"

    def __init__(self, avatar: Avatar, fps: int, checkpoint: str | Path, *, device: str = "auto",
                 precision: str = "auto", batch: int = 16, threads: int | None = None, backend: str = "torch") -> None:
        super().__init__(avatar, fps)
        import torch

        if threads:
            torch.set_num_threads(threads)
        self.device = pick_device(device)
        self.precision = pick_precision(self.device, precision)
        self.batch = batch
        self.model = load_wav2lip(checkpoint, self.device)
        self.onnx = None
        if backend == "onnx":  # ONNX Runtime on the CPU, exported once beside a cache of the weights
            from avatars.wav2lip.onnx import OnnxWav2Lip, export_onnx

            onnx_path = Path(checkpoint).with_suffix(".onnx")
            if not onnx_path.is_file() or onnx_path.stat().st_mtime < Path(checkpoint).stat().st_mtime:
                export_onnx(load_wav2lip(checkpoint), onnx_path)
            self.onnx = OnnxWav2Lip(onnx_path, threads)
            self.device, self.precision = "cpu", "float32"
        if self.precision == "float16":  # GPUs: half-precision weights, inputs converted in _tensor
            self.model = self.model.half()
        self.channels_last = self.device == "cpu" and self.precision == "bfloat16"
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.paste = PasteBack(avatar.image, wav2lip_box(avatar.hints.face_box, avatar.image.shape))
        self._pastes: dict[tuple[int, int, int, int], PasteBack] = {}
        self.video = getattr(avatar, "position", None) is not None
        self.start_hint = 0
        """For idle-video avatars: the tick where the next utterance is expected to start (set by the
        speaker), so each frame is generated from the loop frame it will be shown on."""
        self.face_input = self._face_input(avatar.image, self.paste.box)
        self._lock = threading.Lock()
        with self._inference():
            self._feats = self.model.encode_face(self._tensor(self.face_input))
        log.info("wav2lip ready", extra={"device": self.device, "precision": self.precision, "batch": batch})

    @staticmethod
    def _face_input(picture: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        x1, y1, x2, y2 = box
        face = cv2.resize(picture[y1:y2, x1:x2], (96, 96), interpolation=cv2.INTER_AREA)
        masked = face.copy()
        masked[48:] = 0
        return np.concatenate([masked, face], axis=2).transpose(2, 0, 1)[None].astype(np.float32) / 255.0

    def _paste_for(self, picture: np.ndarray, face_box: tuple[int, int, int, int]) -> PasteBack:
        box = wav2lip_box(face_box, picture.shape)
        if box not in self._pastes:
            if len(self._pastes) > 64:
                self._pastes.clear()
            self._pastes[box] = PasteBack(picture, box)
        return self._pastes[box]

    def infer_video(self, mel_windows_batch: np.ndarray, ticks: list[int]) -> np.ndarray:
        """Per-frame faces for a video avatar: each window with the loop frame it will be shown on."""
        faces = []
        for t in ticks:
            picture, hints = self.base(t)
            faces.append(self._face_input(picture, wav2lip_box(hints.face_box, picture.shape)))
        if self.onnx is not None:
            out = self.onnx(mel_windows_batch[:, None], np.concatenate(faces))
            return np.rint(np.clip(out, 0, 1) * 255).astype(np.uint8).transpose(0, 2, 3, 1)
        audio = self._tensor(mel_windows_batch[:, None].astype(np.float32))
        with self._lock, self._inference():
            out = self.model(audio, self._tensor(np.concatenate(faces)))
        return out.float().clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).contiguous().cpu().numpy()

    # ------------------------------------------------------------------ inference
    def _tensor(self, array: np.ndarray) -> Any:
        import torch

        t = torch.from_numpy(np.ascontiguousarray(array)).to(self.device)
        if self.precision == "float16":
            t = t.half()
        if self.channels_last and t.dim() == 4:
            t = t.contiguous(memory_format=torch.channels_last)
        return t

    def _inference(self) -> Any:
        import contextlib

        import torch

        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self.precision == "bfloat16":
            stack.enter_context(torch.autocast(self.device if self.device != "mps" else "cpu", dtype=torch.bfloat16))
        return stack

    def infer(self, mel_windows_batch: np.ndarray) -> np.ndarray:
        """(B, 80, 16) mel windows -> (B, 96, 96, 3) uint8 faces."""
        if self.onnx is not None:
            faces_in = np.repeat(self.face_input, len(mel_windows_batch), axis=0)
            out = self.onnx(mel_windows_batch[:, None], faces_in)
            return np.rint(np.clip(out, 0, 1) * 255).astype(np.uint8).transpose(0, 2, 3, 1)
        audio = self._tensor(mel_windows_batch[:, None].astype(np.float32))
        with self._lock, self._inference():
            out = self.model.decode(audio, self._feats, broadcast=True)
        faces = out.float().clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).contiguous().cpu().numpy()
        return faces

    # ------------------------------------------------------------------ audio -> poses
    def analyze(self, pcm: np.ndarray, rate: int) -> list[MouthPose]:
        return [p for batch in self.analyze_stream(pcm, rate) for p in batch]

    def analyze_stream(self, pcm: np.ndarray, rate: int, cancelled: threading.Event | None = None, *,
                       start_frame: int | None = None) -> Iterator[list[MouthPose]]:
        """Poses in batches as they are rendered; silent frames skip inference. ``start_frame``: the clock
        tick this speech is expected to start on (idle-video avatars render against those loop frames)."""
        first = self.start_hint if start_frame is None else start_frame
        base = super().analyze(pcm, rate)
        n = len(base)
        if n == 0:
            return
        windows = mel_windows(melspectrogram(resample(pcm, rate, SAMPLE_RATE)), n, self.fps)
        for start in range(0, n, self.batch):
            if cancelled is not None and cancelled.is_set():
                return
            idx = list(range(start, min(n, start + self.batch)))
            speaking = [i for i in idx if base[i].open > 0.02]
            if not speaking:
                faces = np.zeros((0, 96, 96, 3), np.uint8)
            elif self.video:
                faces = self.infer_video(windows[speaking], [first + i for i in speaking])
            else:
                faces = self.infer(windows[speaking])
            patch = dict(zip(speaking, faces, strict=True))
            yield [dataclasses.replace(base[i], patch=patch.get(i)) for i in idx]

    # ------------------------------------------------------------------ frames
    def frame(self, index: int, pose: MouthPose | None = None) -> np.ndarray:
        picture, hints = self.base(index)
        if hints is not self._jaw_hints:
            self._prepare_jaw(hints)
        img = picture.copy()
        if pose is not None and pose.patch is not None:
            paste = self._paste_for(picture, hints.face_box) if self.video else self.paste
            paste.paste(img, pose.patch)
        blink = self.blink_amount(index)
        if blink > 0.0:
            self._draw_eyelids(img, blink)
        return self._head_motion(img, index, pose or MouthPose(0.0, 0.5, 0.0))
