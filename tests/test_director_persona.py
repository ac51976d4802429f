import asyncio

import pytest

from streamer.config import DirectorSettings
from streamer.director import IDLE, OPERATOR, PAID, QUESTION, Director
from streamer.events import Amount, ChatEvent, EventKind, User
from streamer.idle import IdleScheduler
from streamer.persona import ScriptedPersona, load_catalogue
from tests.conftest import REPO


def ev(kind=EventKind.DANMAKU, text="", name="viewer", amount=None, gift="", msg_id="", platform="test"):
    return ChatEvent(platform, "room", kind, User(name, name), text, amount, gift, 1, msg_id=msg_id)


@pytest.fixture
def persona():
    return ScriptedPersona(load_catalogue(REPO / "config" / "products" / "demo.toml"), "Joe", seed=1)


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class FakeSpeaker:
    """Implements the Speaker interface the director uses; records what would be said."""

    def __init__(self):
        self.said, self.turn, self.interrupts = [], 0, 0

    def new_turn(self):
        self.turn += 1
        return self.turn

    async def speak(self, utt, sentences, turn):
        self.said.append((utt, [s async for s in sentences]))
        return 1

    async def wait_played(self, turn, tail_s=0.0):
        await asyncio.sleep(0.01)

    def interrupt(self):
        self.interrupts += 1
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(7)
        return fut


def test_faq_answers_use_live_catalogue_values(persona):
    text = persona.answer_text(ev(text="how much is it?", name="Sam"))
    assert "49" in text and "Sam" in text and "AeroBrew" in text
    persona.catalogue.product.price = 39
    assert "39" in persona.answer_text(ev(text="what's the price"))
    assert "two year warranty" in persona.answer_text(ev(text="warranty?"))
    sc = persona.answer_text(ev(EventKind.SUPER_CHAT, "can I use ground coffee?", "Olivia", Amount(30, "CNY", 30)))
    assert sc.startswith("Thank you so much for the super chat, Olivia!") and "ground coffee" in sc


def test_gift_thanks_are_batched_and_named(persona):
    text = persona.thanks_text([ev(EventKind.GIFT, name=n, gift="rose") for n in ("Leo", "Ava", "Leo", "Zoe", "Kim")])
    assert "Leo, Ava, Zoe and 1 more" in text and "roses" in text


def test_idle_talk_rotates_and_resumes_after_an_interrupt(persona):
    idle = IdleScheduler(persona.catalogue, "Joe")
    lines = []
    for _ in range(12):
        text, key = idle.next_line()
        lines.append(text)
        idle.heard(key, completed=True)
    n = len(persona.catalogue.product.idle) + len(persona.catalogue.product.selling_points)
    assert len(set(lines)) == n and lines[n] == lines[0]
    assert all("{" not in line for line in lines) and "120 units left" in " ".join(lines)
    text, key = idle.next_line()
    idle.heard(key, completed=False)  # cut by an interrupt: said again next time, not skipped
    assert idle.next_line()[0] == text


def make_director(persona, clock, **kw):
    settings = DirectorSettings(**{"danmaku_ttl_s": 60, "thanks_batch_s": 3, **kw})
    return Director(persona, FakeSpeaker(), settings, idle_after_s=8, time_fn=clock,
                    idle=IdleScheduler(persona.catalogue, "Joe", time_fn=clock), topic_fn=persona.topic)


async def test_super_chat_behind_50_danmaku_is_answered_next(persona):
    clock = Clock()
    d = make_director(persona, clock)
    for i in range(50):
        d.submit(ev(text=f"nice stream {i}"))
    d.submit(ev(text="how much?", name="Q"))
    d.submit(ev(EventKind.SUPER_CHAT, "hello!", "Rich", Amount(50, "CNY", 50)))
    first, second = d.next_item(), d.next_item()
    assert first.priority == PAID and first.events[0].user.name == "Rich"
    assert second.priority == QUESTION and second.events[0].user.name == "Q"
    d.say_now("operator line")
    assert d.next_item().priority == OPERATOR


async def test_stale_danmaku_expire_but_paid_never_do(persona):
    clock = Clock()
    d = make_director(persona, clock)
    d.submit(ev(text="old chatter"))
    d.submit(ev(EventKind.SUPER_CHAT, "still here", "Rich", Amount(30, "CNY", 30)))
    clock.t = 3600.0
    item = d.next_item()
    assert item.events[0].kind is EventKind.SUPER_CHAT
    assert d.next_item() is None and d.expired == 1


async def test_bounded_queue_drops_plain_danmaku_first(persona):
    clock = Clock()
    d = make_director(persona, clock, max_queue=10)
    d.submit(ev(EventKind.SUPER_CHAT, "paid", "Rich", Amount(30, "CNY", 30)))
    for i in range(30):
        d.submit(ev(text=f"spam {i}"))
    assert len(d) == 10 and d.dropped == 21
    assert d.next_item().priority == PAID


async def test_gifts_within_the_window_become_one_thanks(persona):
    clock = Clock()
    d = make_director(persona, clock)
    for name in ("a", "b", "c"):
        d.submit(ev(EventKind.GIFT, name=name, gift="rose", amount=Amount(1, "CNY", 1)))
    assert d.next_item() is None  # still collecting
    clock.t = 3.1
    item = d.next_item()
    assert item.kind == "thanks" and len(item.events) == 3 and d.next_item() is None


async def test_run_answers_chat_then_fills_silence_with_idle_talk(persona):
    clock = Clock()
    d = make_director(persona, clock)
    task = asyncio.create_task(d.run())
    try:
        d.submit(ev(text="is shipping free?", name="Sam"))
        await asyncio.sleep(0.1)
        assert len(d.speaker.said) == 1 and "Shipping is free" in " ".join(d.speaker.said[0][1])
        clock.t += 8.5
        await asyncio.sleep(0.4)
        assert d.speaker.said[-1][0].priority == IDLE and d.speaker.said[-1][0].source == "idle"
        n = len(d.speaker.said)
        await asyncio.sleep(0.3)
        assert len(d.speaker.said) == n  # one idle line per quiet period, not a pile
        assert await d.interrupt() == 7
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_platform_moderation_removes_queued_messages(persona):
    from chat_sources.twitch_codec import TwitchCodec

    clock = Clock()
    d = make_director(persona, clock)
    twitch = TwitchCodec("chan")

    def chat(line):
        [e] = twitch.decode(line).events
        d.submit(e)
        return e

    chat("@id=m1;user-id=1;display-name=Ann :ann!a@a PRIVMSG #chan :how much is it?")
    chat("@id=m2;user-id=2;display-name=Troll :t!t@t PRIVMSG #chan :buy followers at spam.example")
    chat("@id=m3;user-id=2;display-name=Troll :t!t@t PRIVMSG #chan :what about this?")
    chat("@id=m4;user-id=3;display-name=Bob :b!b@b PRIVMSG #chan :nice stream")
    chat("@bits=100;id=m5;user-id=4;display-name=Cy :c!c@c PRIVMSG #chan :cheer100 hello")
    d.submit(ev(text="from another platform", msg_id="m1", platform="bilibili"))
    assert len(d) == 6
    chat("@login=ann;target-msg-id=m1 :tmi.twitch.tv CLEARMSG #chan :how much is it?")
    chat("@ban-duration=600;target-user-id=2 :tmi.twitch.tv CLEARCHAT #chan :troll")
    texts = []
    while (item := d.next_item()) is not None:
        texts.append(item.events[0].text)
    assert texts == ["cheer100 hello", "nice stream", "from another platform"]
    chat("@id=m6;user-id=5 :e!e@e PRIVMSG #chan :one more")
    chat("@bits=100;id=m7;user-id=4 :c!c@c PRIVMSG #chan :cheer100 again")
    chat(":tmi.twitch.tv CLEARCHAT #chan")
    assert [i.events[0].text for i in [d.next_item()]] == ["cheer100 again"] and d.next_item() is None
