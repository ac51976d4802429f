import pytest

from streamer.config import DirectorSettings
from streamer.director import IDLE, OPERATOR, PAID, QUESTION, Director
from streamer.director.idle import IdleScheduler
from streamer.events import Amount, ChatEvent, EventKind, User
from streamer.persona import ScriptedPersona, load_catalogue
from tests.conftest import REPO
from tests.fakes.stages import FakeSpeaker, VirtualClock


def ev(kind=EventKind.DANMAKU, text="", name="viewer", amount=None, gift="", msg_id="", platform="test"):
    return ChatEvent(platform, "room", kind, User(name, name), text, amount, gift, 1, msg_id=msg_id)


@pytest.fixture
def persona():
    return ScriptedPersona(load_catalogue(REPO / "config" / "products" / "demo.toml"), "Joe", seed=1)


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
    return Director(persona=persona, speaker=FakeSpeaker(), settings=settings, idle_after_s=8, time_fn=clock,
                    idle=IdleScheduler(persona.catalogue, "Joe", time_fn=clock))


async def test_super_chat_behind_50_danmaku_is_answered_next(persona):
    clock = VirtualClock()
    d = make_director(persona, clock)
    for i in range(50):
        d.push(ev(text=f"nice stream {i}"))
    d.push(ev(text="how much?", name="Q"))
    d.push(ev(EventKind.SUPER_CHAT, "hello!", "Rich", Amount(50, "CNY", 50)))
    first, second = d.next_item(), d.next_item()
    assert first.priority == PAID and first.events[0].user.name == "Rich"
    assert second.priority == QUESTION and second.events[0].user.name == "Q"
    d.say_now("operator line")
    assert d.next_item().priority == OPERATOR


async def test_paid_messages_are_answered_most_valuable_first(persona):
    clock = VirtualClock()
    d = make_director(persona, clock)
    for name, value in [("Low", 5), ("High", 500), ("Mid", 50), ("Mid2", 50)]:
        d.push(ev(EventKind.SUPER_CHAT, f"hi from {name}", name, Amount(value, "CNY", value)))
    assert [d.next_item().events[0].user.name for _ in range(4)] == ["High", "Mid", "Mid2", "Low"]


async def test_stale_danmaku_expire_but_paid_never_do(persona):
    clock = VirtualClock()
    d = make_director(persona, clock)
    d.push(ev(text="old chatter"))
    d.push(ev(EventKind.SUPER_CHAT, "still here", "Rich", Amount(30, "CNY", 30)))
    clock.t = 3600.0
    item = d.next_item()
    assert item.events[0].kind is EventKind.SUPER_CHAT
    assert d.next_item() is None and d.queue.expired == 1


async def test_bounded_queue_drops_plain_danmaku_first(persona):
    clock = VirtualClock()
    d = make_director(persona, clock, max_queue=10)
    d.push(ev(EventKind.SUPER_CHAT, "paid", "Rich", Amount(30, "CNY", 30)))
    for i in range(30):
        d.push(ev(text=f"spam {i}"))
    d.ingest(100)
    assert len(d.queue) == 10 and d.queue.dropped == 21
    assert d.next_item().priority == PAID


async def test_gifts_within_the_window_become_one_thanks(persona):
    clock = VirtualClock()
    d = make_director(persona, clock)
    for name in ("a", "b", "c"):
        d.push(ev(EventKind.GIFT, name=name, gift="rose", amount=Amount(1, "CNY", 1)))
    assert d.next_item() is None  # still collecting
    clock.t = 3.1
    item = d.next_item()
    assert item.kind == "thanks" and len(item.events) == 3 and d.next_item() is None


async def test_run_answers_chat_then_fills_silence_with_idle_talk(persona):
    clock = VirtualClock()
    d = make_director(persona, clock)
    speaker = d.speaker
    await d.start()
    try:
        d.push(ev(text="is shipping free?", name="Sam"))
        await speaker.until(lambda s: len(s.replies) == 1)
        assert "Sam, shipping is free" in " ".join(speaker.said[0])
        clock.t += 4  # quiet, but not yet for idle_after_s: nothing is said
        d.wake()
        clock.t += 4.5
        d.wake()
        await speaker.until(lambda s: len(s.replies) == 2)
        idle = speaker.replies[1][0]
        assert idle.priority == IDLE and idle.source == "idle" and idle.paced
        d.push(ev(text="what colours are there?", name="Ann"))  # a viewer comes before the next idle line
        await speaker.until(lambda s: len(s.replies) == 3)
        assert speaker.replies[2][0].source == "chat" and "Ann" in " ".join(speaker.said[2])
    finally:
        await d.stop()


async def test_platform_moderation_removes_queued_messages(persona):
    from chat_sources.twitch_codec import TwitchCodec

    clock = VirtualClock()
    d = make_director(persona, clock)
    twitch = TwitchCodec("chan")

    def chat(line):
        [e] = twitch.decode(line).events
        d.push(e)
        return e

    chat("@id=m1;user-id=1;display-name=Ann :ann!a@a PRIVMSG #chan :how much is it?")
    chat("@id=m2;user-id=2;display-name=Troll :t!t@t PRIVMSG #chan :buy followers at spam.example")
    chat("@id=m3;user-id=2;display-name=Troll :t!t@t PRIVMSG #chan :what about this?")
    chat("@id=m4;user-id=3;display-name=Bob :b!b@b PRIVMSG #chan :nice stream")
    chat("@bits=100;id=m5;user-id=4;display-name=Cy :c!c@c PRIVMSG #chan :cheer100 hello")
    d.push(ev(text="from another platform", msg_id="m1", platform="bilibili"))
    d.ingest()
    assert len(d.queue) == 6
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
