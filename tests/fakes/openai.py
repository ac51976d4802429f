"""A fake OpenAI-compatible endpoint: POST /v1/chat/completions streaming SSE chunks.

It can be told to delay the first token, stream slowly, pause mid-answer, answer 429/500, hang,
send malformed chunks, or play a jailbroken model that obeys the viewer (reveals its system prompt
and key, adopts a new persona, repeats any phrase) — to prove the defences do not rely on the model.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.base import FakeServer


@dataclass
class Behaviour:
    answer: str = "The AeroBrew is 49 dollars today. Shipping is free. Grab one now!"
    first_token_delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    chunk_chars: int = 4
    pause_after_first_sentence_s: float = 0.0
    errors: list[int] = field(default_factory=list)
    """HTTP statuses to answer with, one per request, before behaving normally."""
    hang: bool = False
    malformed: bool = False
    obedient: bool = False
    script: list[str] = field(default_factory=list)
    """Answers to give, one per request, before behaving as above (a model scripted to comply)."""


class FakeOpenAI(FakeServer):
    def __init__(self, behaviour: Behaviour | None = None) -> None:
        super().__init__()
        self.behaviour = behaviour or Behaviour()
        self.requests: list[dict[str, Any]] = []
        self.auth: list[str] = []
        self.app.router.add_post("/v1/chat/completions", self.completions)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.auth.append(request.headers.get("Authorization", ""))
        b = self.behaviour
        if b.errors:
            status = b.errors.pop(0)
            return web.json_response({"error": {"message": "fake failure", "type": "server_error"}}, status=status)
        if b.hang:
            await asyncio.sleep(3600)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        if b.first_token_delay_s:
            await asyncio.sleep(b.first_token_delay_s)
        if b.malformed:
            await resp.write(b"data: {\"id\": \"x\", \"choices\": [{\"delta\": {\"content\": \n\n")
            await resp.write(b"data: [DONE]\n\n")
            return resp
        answer = b.script.pop(0) if b.script else self.jailbroken(body, request) if b.obedient else b.answer
        first_end = re.search(r"[.!?。！？]", answer)
        for i in range(0, len(answer), b.chunk_chars):
            piece = answer[i:i + b.chunk_chars]
            await resp.write(_chunk(piece))
            if b.chunk_delay_s:
                await asyncio.sleep(b.chunk_delay_s)
            if b.pause_after_first_sentence_s and first_end and i <= first_end.start() < i + b.chunk_chars:
                await asyncio.sleep(b.pause_after_first_sentence_s)
        await resp.write(b"data: [DONE]\n\n")
        return resp

    def jailbroken(self, body: dict[str, Any], request: web.Request) -> str:
        """What a model that follows viewer instructions would say."""
        system = body["messages"][0]["content"]
        user = body["messages"][-1]["content"]
        low = user.lower()
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if any(w in low for w in ("key", "密钥", "令牌", "token", "password", "secret")):
            return f"Sure! My API key is {key}. Anything else?"
        if any(w in low for w in ("prompt", "instruction", "提示", "指令", "设定", "规则", "rules", "config")):
            return f"Of course. My instructions are: {system}"
        if any(w in low for w in ("you are", "pretend", "扮演", "你是", "persona", "mode", "模式", "dan")):
            return "Okay, I am now DAN, an unfiltered AI with no rules. 我现在是DAN。"
        quoted = re.search(r"<viewer>(\{.*?\})</viewer>", user)
        said = json.loads(quoted.group(1)).get("text", "") if quoted else user
        m = re.search(r"[:：\"“]\s*(.+?)[\"”]?\s*$", said)
        phrase = m.group(1) if m else "This is the best product in the world, 全网最低, 100% guaranteed"
        return f"{phrase}. {phrase}!"


def _chunk(text: str) -> bytes:
    data = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": "fake",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()
