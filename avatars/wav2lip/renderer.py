"""The Wav2Lip renderer: real-time lip-sync on a plain CPU.

It implements the same interface as the procedural renderer (poses from audio ahead of time, a frame
for any clock tick), so choosing it is one config line and interrupts work the same way. Idle
motion (blinks, breathing, sway) comes from the procedural layer on top of the pasted face.

What the network sees and gives back follows the official inference exactly
(``avatars.wav2lip.official``: BGR, padded box, 96x96 bilinear, masked + reference faces, 16-column
mel windows, x255 truncated). Speed comes from:
- the fastest generator this device runs acceptably (``avatars.wav2lip.backends``: int8 ONNX Runtime
  on CPUs without native bf16, bf16 + channels-last torch with it, fp16 on CUDA);
- the face encoder runs once per still avatar, its features broadcast over every batch;
- frames whose audio is silent skip inference and keep the closed-mouth base face;
- batches stream (a small first batch, then full ones), so speech starts after the first batch;
- paste-back touches only the lower-face rectangle in 8-bit, and a frame is one warp of the picture
  (``avatars.motion``): the whole path runs within a few percent of the generator alone.

A frame whose pose has no generated face but an open mouth (the renderer fell behind, or failed) is
drawn with the procedural mouth, so the picture never freezes on a closed mouth while audio plays.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from avatars.base import REST, Avatar, Capabilities, FaceHints, MouthPose
from avatars.dsp import resample
from avatars.motion import head_matrix
from avatars.paste import PasteBack, wav2lip_box
from avatars.procedural import ProceduralRenderer
from avatars.wav2lip.audio import SAMPLE_RATE, mel_windows, melspectrogram
from avatars.wav2lip.backends import build, choose, measure_precision
from avatars.wav2lip.checkpoint import load_wav2lip
from avatars.wav2lip.official import DEFAULT_PADS, face_input, faces_from_output
from avatars.wav2lip.onnx import synthetic_calibration

log = logging.getLogger(__name__)


class RenderError(RuntimeError):
    """Inference failed (out of GPU memory even at batch 1, a backend error): the cause, in words."""


class Wav2LipRenderer(ProceduralRenderer):
    name = "wav2lip"

    def __init__(self, avatar: Avatar, fps: int, checkpoint: str | Path, *, device: str = "auto",
                 precision: str = "auto", batch: int = 16, threads: int | None = None, backend: str = "auto",
                 pads: tuple[int, int, int, int] = DEFAULT_PADS, frames_on: str | None = None) -> None:
        """``frames_on``: the torch device that composes frames (paste-back, colour, motion); None: the GPU
        when the generator runs on one, else OpenCV on the CPU (``"cpu"`` runs the torch path on the CPU)."""
        self.pads = (int(pads[0]), int(pads[1]), int(pads[2]), int(pads[3]))  # the face region needs it
        super().__init__(avatar, fps)
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.checkpoint = Path(checkpoint)
        self.batch = batch
        model = load_wav2lip(self.checkpoint)
        self.paste = PasteBack(avatar.image, self._box(avatar.hints, avatar.image))
        self._pastes: dict[tuple[int, int, int, int], PasteBack] = {self.paste.box: self.paste}
        self.face_input = face_input(avatar.image, self.paste.box)
        self.probe = synthetic_calibration(self.face_input)
        """Mel windows of a synthetic voice and this avatar's face: quantisation calibration and the
        fixed input on which lossy precisions are compared with float32."""
        self.choice = choose(device, backend, precision, self.checkpoint,
                             measure=lambda c: measure_precision(model, self.checkpoint, c, self.probe, threads))
        self.device, self.precision = self.choice.device, self.choice.precision
        self.generator = build(model, self.checkpoint, self.choice, threads, calibration=self.probe)
        self._lock = threading.Lock()
        self._static = None if avatar.animated else self.generator.static_face(self.face_input)
        self._prepare_jaw(avatar.hints)  # the face region now includes the paste box
        if frames_on is None and self.device.startswith("cuda") and not avatar.animated:
            frames_on = self.device
        self._device_frames = None
        if frames_on is not None:
            from avatars.wav2lip.device import DeviceFrames

            alpha = avatar.alpha if avatar.backdrop is not None else None
            self._device_frames = DeviceFrames(avatar.image, self.paste, frames_on, alpha)
        log.info("wav2lip ready", extra={"generator": self.generator.label, "device": self.device, "batch": batch})

    CPU_STREAM_BATCH = 8
    """On a CPU a batch of 8 runs as fast per frame as 16 (the cost is per frame there), and a forward
    pass cannot be stopped halfway: an interrupt, or the next answer, waits for the one in flight."""

    @property
    def capabilities(self) -> Capabilities:
        batch = self.batch if self.device != "cpu" else min(self.batch, self.CPU_STREAM_BATCH)
        return Capabilities(batched=True, batch=batch, start_tick=self.avatar.animated)

    def _box(self, hints: FaceHints, picture: np.ndarray) -> tuple[int, int, int, int]:
        return wav2lip_box(hints.face_box, picture.shape, self.pads)

    # ------------------------------------------------------------------ inference
    def infer(self, windows: np.ndarray, ticks: list[int] | None = None) -> np.ndarray:
        """(B, 80, 16) mel windows -> (B, 96, 96, 3) uint8 RGB faces. ``ticks``: for an idle-video
        avatar, the clock tick each window will be shown on (its face input comes from that frame)."""
        if ticks is None and self._static is not None:
            faces: Any = self._static
        else:
            inputs = []
            for t in ticks or [0] * len(windows):
                picture, hints = self.base(t)
                inputs.append(face_input(picture, self._box(hints, picture)))
            faces = np.concatenate(inputs)
        return self._run(windows[:, None].astype(np.float32), faces)

    def _run(self, audio: np.ndarray, faces: Any) -> np.ndarray:
        """The generator on one batch; out of GPU memory, the batch is halved until it fits."""
        try:
            with self._lock:
                out = self.generator(audio, faces)
        except RuntimeError as e:
            if "out of memory" not in str(e).lower():
                raise RenderError(f"Wav2Lip inference failed on {self.generator.label}: {e}") from e
            if len(audio) == 1:
                raise RenderError(f"the GPU is out of memory even at batch 1 ({self.device}): free GPU memory "
                                  "or set [avatar] device = \"cpu\"") from e
            self._free_device_memory()
            half = len(audio) // 2
            self.batch = max(1, min(self.batch, half))
            log.warning("GPU out of memory; halving the Wav2Lip batch", extra={"batch": self.batch})
            shared = not isinstance(faces, np.ndarray) or len(faces) != len(audio)
            return np.concatenate([self._run(audio[:half], faces if shared else faces[:half]),
                                   self._run(audio[half:], faces if shared else faces[half:])])
        if not isinstance(out, np.ndarray):
            out = out.cpu().numpy()
        return faces_from_output(out)

    @staticmethod
    def _free_device_memory() -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # ------------------------------------------------------------------ audio -> poses
    def analyze(self, pcm: np.ndarray, rate: int) -> list[MouthPose]:
        return [p for batch in self.render_batches(pcm, rate) for p in batch]

    def render_batches(self, pcm: np.ndarray, rate: int, start_tick: int = 0, sizes: Iterator[int] | None = None,
                       base: list[MouthPose] | None = None) -> Iterator[list[MouthPose]]:
        """Poses in batches as they are rendered; silent frames skip inference."""
        base = base if base is not None else ProceduralRenderer.analyze(self, pcm, rate)
        n = len(base)
        if n == 0:
            return
        windows = mel_windows(melspectrogram(resample(pcm, rate, SAMPLE_RATE)), n, self.fps)
        sizes = itertools.chain(sizes or (), itertools.repeat(self.batch))
        start = 0
        while start < n:
            idx = range(start, min(n, start + max(1, next(sizes))))
            start = idx.stop
            speaking = [i for i in idx if base[i].speaking]
            faces: Any = ()
            if speaking:
                ticks = [start_tick + i for i in speaking] if self.avatar.animated else None
                faces = self.infer(windows[speaking], ticks)
            patch = dict(zip(speaking, faces, strict=True))
            yield [dataclasses.replace(base[i], patch=patch.get(i)) for i in idx]

    # ------------------------------------------------------------------ frames
    def frame(self, index: int, pose: MouthPose | None = None) -> np.ndarray:
        if self._device_frames is None:
            return super().frame(index, pose)
        pose = pose or REST
        blink = self.blink_amount(index)
        edit = None
        if blink > 0.0 or (pose.speaking and pose.patch is None):  # drawn on the CPU, uploaded as a region
            canvas = self._canvas.begin(self.avatar.image, self._region)
            if pose.speaking and pose.patch is None:
                self._draw_mouth(canvas, pose)
            if blink > 0.0:
                self._draw_eyelids(canvas, blink)
            x1, y1, x2, y2 = self._region
            edit = (self._region, canvas[y1:y2, x1:x2])
        h, w = self.avatar.image.shape[:2]
        m = head_matrix(index, self.fps, (w, h), pose.energy, self.avatar.hints.mouth_width)
        backdrop = self.avatar.backdrop.picture(index) if self.avatar.backdrop is not None else None
        return self._device_frames.frame(m, pose.patch, edit, backdrop)

    def _paste_for(self, picture: np.ndarray, hints: FaceHints) -> PasteBack:
        box = self._box(hints, picture)
        paste = self._pastes.get(box)
        if paste is None:
            if len(self._pastes) > 64:
                self._pastes.clear()
            paste = self._pastes[box] = PasteBack(picture, box)
        return paste

    def _face_region(self, hints: FaceHints) -> tuple[int, int, int, int]:
        x1, y1, x2, y2 = super()._face_region(hints)
        bx1, by1, bx2, by2 = self._box(hints, self.avatar.image)
        return min(x1, bx1), min(y1, by1), max(x2, bx2), max(y2, by2)

    def _changes(self, pose: MouthPose, blink: float) -> bool:
        return blink > 0.0 or pose.speaking or pose.patch is not None

    def _draw(self, img: np.ndarray, pose: MouthPose, blink: float) -> None:
        if pose.patch is not None:
            self._paste_for(img, self._jaw_hints).paste(img, pose.patch)
        elif pose.speaking:  # not rendered in time: the procedural mouth keeps the lips moving
            self._draw_mouth(img, pose)
        if blink > 0.0:
            self._draw_eyelids(img, blink)
