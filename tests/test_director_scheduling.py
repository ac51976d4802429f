"""Director scheduling on virtual time: merging, persistence across restarts, idle yielding, memory,
moderation and operator actions."""

import asyncio

import pytest

from streamer.config import DirectorSettings
from streamer.director import IDLE, PAID, Director
from streamer.events import Amount, ChatEvent, EventKind, User
from streamer.idle import Announcement, IdleScheduler
from streamer.moderation import ModerationRules, Moderator
from streamer.persona import ScriptedPersona, load_catalogue
from streamer.persona.memory import Memory
from streamer.store import Store
from tests.conftest import REPO
from tests.test_director_persona import Clock, FakeSpeaker


def ev(text="", name="viewer", kind=EventKind.DANMAKU, amount=None, gift="", platform="test", uid=None):
    return ChatEvent(platform, "room", kind, User(uid or name.lower(), name), text, amount, gift)


@pytest.fixture
def catalogue():
    return load_catalogue(REPO / "config" / "products" / "demo.toml")


def director(catalogue, clock, **kw):
    memory = kw.pop("memory", Memory())
    persona = ScriptedPersona(catalogue, "Joe", seed=2, memory=memory)
    return Director(persona, kw.pop("speaker", FakeSpeaker()), DirectorSettings(**kw.pop("settings", {})), 8.0,
                    idle=kw.pop("idle", IdleScheduler(catalogue, "Joe", time_fn=clock)), memory=memory,
                    topic_fn=persona.topic, time_fn=clock, **kw)


async def test_five_people_asking_the_price_get_one_answer_naming_them(catalogue):
    clock = Clock()
    d = director(catalogue, clock)
    for name, text in [("Sam", "how much is it?"), ("Ann", "price?"), ("Bo", "What's the price"),
                       ("Cy", "how much"), ("Di", "how much does it cost?"), ("Ed", "is shipping free?")]:
        d.submit(ev(text, name))
    first = d.next_item()
    assert [e.user.name for e in first.events] == ["Sam", "Ann", "Bo", "Cy", "Di"] and d.merged == 4
    text = d.persona.text_for(first.turn)
    assert text.startswith("Sam, Ann, Bo and 2 more asked about this.") and "49" in text
    assert [e.user.name for e in d.next_item().events] == ["Ed"]


async def test_unanswered_super_chats_survive_a_restart_and_are_answered_once(catalogue, tmp_path):
    clock = Clock()
    store = Store(tmp_path / "state.db")
    d = director(catalogue, clock, store=store)
    d.submit(ev("first!", "Rich", EventKind.SUPER_CHAT, Amount(30, "CNY", 30)))
    d.submit(ev("second", "Rick", EventKind.SUPER_CHAT, Amount(50, "CNY", 50)))
    d.submit(ev(name="Gia", kind=EventKind.GIFT, amount=Amount(1, "CNY", 1), gift="rose"))
    await d._play(d.next_item().turn)  # the first is answered, then the process "crashes"
    store.close()

    store = Store(tmp_path / "state.db")
    d2 = director(catalogue, clock, store=store)
    item = d2.next_item()
    assert item.priority == PAID and item.events[0].text == "second"
    await d2._play(item.turn)
    thanks = d2.next_item()
    assert thanks.kind == "thanks" and thanks.events[0].user.name == "Gia"
    await d2._play(thanks.turn)
    assert d2.next_item() is None
    store.close()
    d3 = director(catalogue, clock, store=Store(tmp_path / "state.db"))
    assert d3.next_item() is None and len(d3) == 0


class InterruptingSpeaker(FakeSpeaker):
    """After the first sentence of a turn is queued, a viewer asks something."""

    def __init__(self, on_first):
        super().__init__()
        self.on_first = on_first

    async def speak(self, utt, sentences, turn):
        said = []
        async for s in sentences:
            said.append(s)
            if len(said) == 1:
                self.on_first()
        self.said.append((utt, said))
        return len(said)


async def test_idle_talk_yields_to_a_question_within_one_sentence(catalogue):
    clock = Clock()
    idle = IdleScheduler(catalogue, "Joe", [Announcement("Flash sale now. The price is {price}. Only {stock} left. "
                                                         "Tell your friends.", 60)], time_fn=clock)
    holder = {}
    speaker = InterruptingSpeaker(lambda: holder["d"].submit(ev("is shipping free?", "Sam")))
    d = holder["d"] = director(catalogue, clock, speaker=speaker, idle=idle)
    await d._play_idle()
    assert speaker.said[0][1] == ["Flash sale now."]  # the rest of the idle line gave way
    item = d.next_item()
    assert item.events[0].user.name == "Sam"
    assert idle.announcements[0].last_at == float("-inf")  # not marked heard, so it comes again later


async def test_stale_danmaku_expire_and_questions_outrank_chatter(catalogue):
    clock = Clock()
    d = director(catalogue, clock, settings={"danmaku_ttl_s": 30})
    d.submit(ev("lol", "A"))
    clock.t = 40
    d.submit(ev("nice", "B"))
    d.submit(ev("what colors do you have?", "C"))
    assert [d.next_item().events[0].user.name for _ in range(2)] == ["C", "B"]
    assert d.next_item() is None and d.expired == 1


def test_memory_keeps_what_was_heard_and_marks_interruptions():
    m = Memory(budget_tokens=60)
    m.asked("t1", '<viewer name="Sam">price?</viewer>')
    m.heard("t1", "It is 49 dollars.", True)
    m.heard("t1", "Shipping is free for everyone today.", False, 0.5)
    assert m.last_heard() == "It is 49 dollars. Shipping is free f… [interrupted]"
    for i in range(20):
        m.asked(f"x{i}", f'<viewer name="v{i}">question number {i} about the coffee maker</viewer>')
        m.heard(f"x{i}", f"Answer number {i} about the coffee maker.", True)
    ctx = m.context()
    assert ctx[0]["role"] == "user" and ctx[-1]["content"] == "Answer number 19 about the coffee maker."
    assert sum(len(c["content"]) for c in ctx) < 400  # the budget keeps it short


async def test_playback_reports_feed_memory_only_with_what_played(catalogue):
    clock = Clock()
    d = director(catalogue, clock)
    d.submit(ev("is shipping free?", "Sam"))
    await d._play(d.next_item().turn)
    number = d.speaker.turn
    d.on_playback(number, "Sam, Shipping is free, and orders placed today leave our warehouse tomorrow.", "end", False, 0.4)
    assert d.memory.last_heard().endswith("[interrupted]") and "warehouse" not in d.memory.last_heard()
    assert d.memory.returning(ev("hello again", "Sam")) is not None


async def test_moderation_and_operator_actions(catalogue, tmp_path):
    clock = Clock()
    store = Store(tmp_path / "s.db")
    mod = Moderator(ModerationRules(blocked_words=["傻逼"], approve_new_viewers=True), time_fn=clock)
    d = director(catalogue, clock, moderator=mod, store=store)
    d.submit(ev("你是沙比", "Troll"))
    d.submit(ev("how much is it?", "Newbie"))
    assert len(d) == 0 and list(mod.held) and mod.stats["blocked word"] == 1
    held_id = next(iter(mod.held))
    assert d.approve(held_id) and d.next_item().events[0].user.name == "Newbie"
    d.submit(ev("is it easy to clean?", "Newbie"))  # approved viewers are trusted from now on
    assert len(d) == 1
    d.submit(ev(kind=EventKind.SUPER_CHAT, text="paid are never held", name="Rich", amount=Amount(30, "CNY", 30)))
    assert d.ban("newbie") == 1 and len(d) == 1
    d.submit(ev("one more", "Newbie"))
    assert len(d) == 1  # banned
    store.close()
    d2 = director(catalogue, clock, moderator=Moderator(ModerationRules(), time_fn=clock), store=Store(tmp_path / "s.db"))
    d2.submit(ev("back again", "Newbie"))
    assert [i.events[0].text for i in [d2.next_item()]] == ["paid are never held"] and d2.next_item() is None
    rich = ev("delete me", "Rich", EventKind.SUPER_CHAT, Amount(30, "CNY", 30))
    d2.submit(rich)
    assert d2.delete(rich.id) == 1 and d2.next_item() is None


async def test_big_gifts_get_a_bigger_thanks(catalogue):
    clock = Clock()
    d = director(catalogue, clock)
    d.submit(ev(name="Whale", kind=EventKind.GIFT, amount=Amount(500, "CNY", 500), gift="rocket"))
    clock.t = 5
    text = d.persona.text_for(d.next_item().turn)
    assert "generous" in text or "made my day" in text


async def test_never_dead_air_idle_follows_quiet(catalogue):
    clock = Clock()
    d = director(catalogue, clock)
    task = asyncio.create_task(d.run())
    try:
        clock.t = 9
        for _ in range(50):
            await asyncio.sleep(0.02)
            if d.speaker.said:
                break
        assert d.speaker.said and d.speaker.said[0][0].priority == IDLE
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_cheap_gifts_are_thanked_with_chat_and_valuable_ones_as_paid(catalogue):
    clock = Clock()
    d = director(catalogue, clock, settings={"paid_threshold_cny": 5.0})
    d.submit(ev(name="A", kind=EventKind.GIFT, amount=Amount(100, "gold_coin", 0.1), gift="heart"))
    d.submit(ev("what colors do you have?", "Q"))
    clock.t = 4
    assert d.next_item().events[0].user.name == "Q"  # a question outranks a 0.1 CNY heart
    assert d.next_item().kind == "thanks"
    d.submit(ev(name="B", kind=EventKind.GIFT, amount=Amount(10, "CNY", 10), gift="rocket"))
    d.submit(ev("what colors do you have?", "R"))
    clock.t = 8
    assert d.next_item().kind == "thanks"  # a 10 CNY rocket is paid: thanked first
