"""The synthesis cache: a sentence is synthesised once per voice, then read back from disk.

A live-commerce stream repeats itself: product lines, announcements, thank-yous. Keyed by the voice
(engine, voice name, rate, pitch: :meth:`TTS.cache_key`) and the normalised text, each entry keeps the
finished audio (int16 at the output rate, loudness already applied) and its word timings. The folder is
bounded: above ``max_mb`` the least recently used entries are deleted (a hit refreshes an entry's
time). Writes go to a temporary file renamed into place, so a crash never leaves a torn entry, and a
corrupt entry is deleted and treated as a miss.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from streamer.voice.audio import float_to_int16, int16_to_float

if TYPE_CHECKING:
    from streamer.voice.base import Speech

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    root = os.environ.get("STREAMER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "streamer")
    return Path(root) / "tts"


class SynthesisCache:
    def __init__(self, folder: Path | str | None = None, max_mb: float = 200.0) -> None:
        self.folder = Path(folder) if folder else default_cache_dir()
        self.max_bytes = int(max_mb * 1024 * 1024)
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._total: int | None = None

    def _path(self, key: str, text: str) -> Path:
        digest = hashlib.sha256(f"{key}\0{text}".encode()).hexdigest()
        return self.folder / digest[:2] / f"{digest}.npz"

    def get(self, key: str, text: str, rate: int) -> Speech | None:
        from streamer.voice.base import Speech, WordBoundary

        path = self._path(key, text)
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                pcm = int16_to_float(z["pcm"])
        except FileNotFoundError:
            self.misses += 1
            return None
        except Exception as e:  # a torn or foreign file: drop it, synthesise again
            log.warning("corrupt cache entry removed", extra={"path": str(path), "error": str(e)})
            path.unlink(missing_ok=True)
            self.misses += 1
            return None
        if meta.get("rate") != rate or meta.get("text") != text:
            self.misses += 1
            return None
        try:
            os.utime(path)
        except OSError:
            pass
        self.hits += 1
        words = [WordBoundary(w[0], w[1], w[2]) for w in meta.get("words", [])]
        return Speech(text, pcm, rate, meta.get("engine", key), words, cached=True)

    def put(self, key: str, speech: Speech) -> None:
        path = self._path(key, speech.text)
        meta = {"rate": speech.rate, "text": speech.text, "engine": speech.engine,
                "words": [[w.text, round(w.start_s, 4), round(w.end_s, 4)] for w in speech.words]}
        buf = io.BytesIO()
        np.savez(buf, pcm=float_to_int16(speech.pcm), meta=np.array(json.dumps(meta, ensure_ascii=False)))
        data = buf.getvalue()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}.{threading.get_ident()}")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError as e:  # a full or read-only disk must not stop the voice
            log.warning("cannot write synthesis cache", extra={"path": str(path), "error": str(e)})
            return
        with self._lock:
            self._total = (self._total if self._total is not None else self._scan()) + len(data)
            if self._total > self.max_bytes:
                self._evict()

    def _entries(self) -> list[tuple[float, int, Path]]:
        out = []
        for p in self.folder.glob("*/*.npz"):
            try:
                st = p.stat()
            except OSError:
                continue
            out.append((st.st_mtime, st.st_size, p))
        return out

    def _scan(self) -> int:
        return sum(size for _, size, _ in self._entries())

    def _evict(self) -> None:
        entries = sorted(self._entries())
        total = sum(size for _, size, _ in entries)
        for _, size, p in entries:
            if total <= self.max_bytes * 0.9:
                break
            p.unlink(missing_ok=True)
            total -= size
        self._total = total

    def size_bytes(self) -> int:
        return self._scan()
