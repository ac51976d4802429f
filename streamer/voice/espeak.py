"""espeak-ng: the always-available offline fallback voice (a subprocess, text on stdin, never a shell).

For Mandarin give it Chinese characters with the voice ``cmn`` (``cmn-latn-pinyin`` is for pinyin
input); a variant picks the timbre (``cmn+f3``, ``en-us+f3`` are female, matching the drawn host).
It is robotic: in a chain it is the last resort that always works.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np

from streamer.voice.audio import read_wav_bytes
from streamer.voice.base import TTS, TTSError, register
from streamer.voice.cache import SynthesisCache

INSTALL_HINT = "sudo apt-get install espeak-ng"


@register("espeak")
class EspeakTTS(TTS):
    name = "espeak"

    def __init__(self, output_rate: int, voice: str = "en-us", speed: float = 1.0, volume: float = 1.0,
                 timeout_s: float = 20.0, loudness_lufs: float | None = None, cache: SynthesisCache | None = None,
                 **_: object) -> None:
        zh = voice.split("+")[0].lower().startswith(("cmn", "zh", "yue"))
        super().__init__(output_rate, volume, languages=("zh", "en") if zh else ("en",),
                         loudness_lufs=loudness_lufs, cache=cache)
        exe = shutil.which("espeak-ng") or shutil.which("espeak")
        if exe is None:
            raise TTSError(f"espeak-ng is not installed: {INSTALL_HINT}")
        self.exe, self.voice, self.timeout_s = exe, voice, timeout_s
        self.words_per_minute = int(175 * speed)

    def describe(self) -> str:
        return f"espeak-ng ({self.voice})"

    def cache_key(self) -> str:
        return f"espeak:{self.voice}:{self.words_per_minute}"

    def _synthesize(self, text: str) -> tuple[np.ndarray, int]:
        proc = subprocess.run(
            [self.exe, "-v", self.voice, "-s", str(self.words_per_minute), "-b", "1", "--stdout"],
            input=text.encode("utf-8"), capture_output=True, timeout=self.timeout_s, check=False,
        )
        if proc.returncode != 0 or not proc.stdout:
            raise TTSError(f"espeak-ng failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[:200]}")
        return read_wav_bytes(proc.stdout)
