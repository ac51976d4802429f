"""The LLM persona against a local OpenAI-compatible SSE server: streaming, retries, fallback."""

import asyncio
import json
import time

import pytest

from streamer.events import Amount, ChatEvent, EventKind, User
from streamer.persona import ScriptedPersona, load_catalogue
from streamer.persona.base import Turn
from streamer.persona.llm import LLMPersona
from streamer.persona.memory import Memory
from streamer.persona.profile import PersonaProfile
from tests.conftest import REPO
from tests.fakes.openai import Behaviour, FakeOpenAI

pytest.importorskip("openai")


def make(server, memory=None, **kw):
    catalogue = load_catalogue(REPO / "config" / "products" / "demo.toml")
    memory = memory or Memory()
    fallback = ScriptedPersona(catalogue, "Joe", seed=3, memory=memory)
    return LLMPersona(PersonaProfile("Joe"), catalogue, memory, fallback, base_url=server.url, model="fake",
                      api_key="sk-test-abcdefghijklmnop", **{"first_token_timeout_s": 1.0, "stall_timeout_s": 1.0,
                                                             "retries": 2, "answer_deadline_s": 60.0, **kw})


def question(text="how much is it?", name="Sam"):
    return Turn("answer", 2, [ChatEvent("test", "r", EventKind.DANMAKU, User(name.lower(), name), text)])


async def collect(persona, turn):
    out, times = [], []
    t0 = time.monotonic()
    try:
        async for s in persona.reply(turn):
            out.append(s)
            times.append(time.monotonic() - t0)
    finally:
        await persona.aclose()
    return out, times


async def test_first_sentence_reaches_voice_before_the_answer_is_finished():
    async with FakeOpenAI(Behaviour(pause_after_first_sentence_s=1.0)) as server:
        persona = make(server, stall_timeout_s=3.0)
        sentences, times = await collect(persona, question())
    assert sentences == ["The AeroBrew is 49 dollars today.", "Shipping is free.", "Grab one now!"]
    assert times[1] - times[0] > 0.8  # the first sentence went out a whole pause before the second


async def test_viewer_text_is_quoted_and_the_key_sent_as_bearer():
    async with FakeOpenAI() as server:
        memory = Memory()
        persona = make(server, memory)
        memory.asked("turn0", '<viewer>{"name": "Ann", "text": "hi"}</viewer>')
        memory.heard("turn0", "Hi Ann, welcome!", True)
        sc = Turn("answer", 1, [ChatEvent("test", "r", EventKind.SUPER_CHAT, User("1", "Rich"),
                                          "ignore <b>this</b>\nplease", Amount(30, "CNY", 30))])
        await collect(persona, sc)
    req = server.requests[0]
    system, *history, user = req["messages"]
    assert "untrusted" in system["content"] and "49" in system["content"]
    assert history == [{"role": "user", "content": '<viewer>{"name": "Ann", "text": "hi"}</viewer>'},
                       {"role": "assistant", "content": "Hi Ann, welcome!"}]
    assert '<viewer>{"name": "Rich", "text": "ignore ‹b›this‹/b› please", "paid": "30 CNY"}</viewer>' in user["content"]
    assert server.auth[0] == "Bearer sk-test-abcdefghijklmnop" and req["stream"] is True


async def test_429_and_500_are_retried():
    async with FakeOpenAI(Behaviour(errors=[429, 500])) as server:
        persona = make(server)
        sentences, _ = await collect(persona, question())
    assert sentences[0] == "The AeroBrew is 49 dollars today." and len(server.requests) == 3
    assert persona.failures == 2 and persona.fallbacks == 0


@pytest.mark.parametrize("behaviour", [
    Behaviour(errors=[500, 500, 500]), Behaviour(hang=True), Behaviour(malformed=True),
    Behaviour(first_token_delay_s=5.0)], ids=["500", "hang", "malformed", "slow-first-token"])
async def test_a_broken_endpoint_falls_back_to_the_scripted_persona(behaviour):
    async with FakeOpenAI(behaviour) as server:
        persona = make(server)
        sentences, _ = await collect(persona, question())
    assert "49 dollars" in " ".join(sentences) and sentences[0].startswith("Sam,")  # the scripted FAQ answer
    assert persona.fallbacks == 1 and len(server.requests) == 3  # tried, retried twice, then gave way


@pytest.mark.parametrize("behaviour", [Behaviour(hang=True), Behaviour(chunk_chars=1, chunk_delay_s=0.4)],
                         ids=["hang", "slow-trickle"])
async def test_a_viewer_is_answered_by_the_script_once_the_answer_deadline_passes(behaviour):
    async with FakeOpenAI(behaviour) as server:
        persona = make(server, first_token_timeout_s=30.0, stall_timeout_s=30.0, answer_deadline_s=1.0)
        sentences, _ = await collect(persona, question("how much is it?", "小明"))
    # no retry can start after the deadline: at most the one request, then the scripted FAQ answer
    assert len(server.requests) <= 1 and persona.fallbacks == 1
    assert sentences[0].startswith("小明,") and "49 dollars" in " ".join(sentences)


@pytest.mark.parametrize("status", [400, 401, 403, 404])
async def test_a_refused_configuration_is_not_retried_and_said_once(status, caplog):
    async with FakeOpenAI(Behaviour(errors=[status] * 4)) as server:
        persona = make(server)
        first, _ = await collect(persona, question())
        persona = make(server)
        try:
            second = [s async for s in persona.reply(question("is shipping free?"))]
            third = [s async for s in persona.reply(question("warranty?"))]
        finally:
            await persona.aclose()
    assert "49 dollars" in " ".join(first) and second and third  # the scripted persona answered each time
    assert len(server.requests) == 3  # one request per turn: a wrong key is not retried
    assert caplog.text.count("the LLM endpoint refuses the configuration") == 2  # once per persona, not per turn


async def test_a_stall_mid_answer_ends_the_reply_after_what_was_said():
    async with FakeOpenAI(Behaviour(pause_after_first_sentence_s=5.0)) as server:
        persona = make(server)
        sentences, _ = await collect(persona, question())
    assert sentences == ["The AeroBrew is 49 dollars today."]  # said, then the stall ended the reply
    assert persona.fallbacks == 0


async def test_non_answer_turns_do_not_call_the_model():
    async with FakeOpenAI() as server:
        persona = make(server)
        out, _ = await collect(persona, Turn("operator", 0, text="Flash sale in five minutes!"))
        await asyncio.sleep(0)
    assert out == ["Flash sale in five minutes!"] and server.requests == []


async def test_idle_lines_are_paraphrased_and_fall_back_to_the_script():
    async with FakeOpenAI(Behaviour(answer="Hey friends, the AeroBrew is just 49 dollars right now!")) as server:
        persona = make(server, paraphrase_idle=True)
        out, _ = await collect(persona, Turn("idle", 4, text="If you just joined, the AeroBrew is only 49 dollars today."))
    assert out == ["Hey friends, the AeroBrew is just 49 dollars right now!"]
    assert "<line>If you just joined" in server.requests[0]["messages"][-1]["content"]
    async with FakeOpenAI(Behaviour(errors=[500])) as server:
        persona = make(server, paraphrase_idle=True)
        out, _ = await collect(persona, Turn("idle", 4, text="Tap follow. See you soon!"))
    assert out == ["Tap follow.", "See you soon!"] and len(server.requests) == 1


async def test_the_question_being_answered_reaches_the_model_once():
    async with FakeOpenAI() as server:
        memory = Memory()
        persona = make(server, memory)
        turn = question("这个多少钱？包邮吗？", "小明")
        memory.asked(turn.id, "<viewer>{\"name\": \"小明\", \"text\": \"这个多少钱？包邮吗？\"}</viewer>")  # as the director does
        await collect(persona, turn)
    sent = json.dumps(server.requests[0]["messages"], ensure_ascii=False)
    assert sent.count("包邮吗") == 1
