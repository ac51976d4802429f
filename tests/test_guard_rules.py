"""The output guard's rules (data) and decisions: every rule's own examples, bad rules files, the
live catalogue, streaming across sentences, operator visibility, and the held-in corpora.

Examples of catalogue-dependent rules are written against tests/data/guard/shop.toml (a tea shop:
68 yuan tea with 200 in stock, a 129 yuan teapot with 35, coupons TEA10 and POT20, a free sample
pack) with the shop's own brands "Yunwu" and "云雾".
"""

import json
from pathlib import Path

import pytest

from streamer.config import ConfigError, load_settings
from streamer.guard import Allowances, OutputGuard, RuleSet, read_rules
from streamer.guard.build import build_output_guard, load_rule_set
from streamer.guard.doctor import doctor_checks
from streamer.guard.rules import read_terms
from streamer.persona import ScriptedPersona, load_catalogue
from streamer.persona.base import Turn
from streamer.persona.factory import build_cast, build_output_filter
from streamer.persona.memory import Memory
from streamer.persona.sentences import split_text
from tests.conftest import REPO, write_config

DATA = Path(__file__).parent / "data" / "guard"
RULES = REPO / "config" / "safety" / "rules"
BRANDS = ["Yunwu", "云雾"]


def _load(*names: str) -> RuleSet:
    rules = RuleSet()
    for n in names:
        read_rules(RULES / f"{n}.toml", rules)
    read_terms(REPO / "config" / "safety" / "terms.toml", rules)
    return rules


ALL = _load("common", "en", "zh", "douyin", "bilibili")


def _jsonl(name):
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines()]


def shop():
    return load_catalogue(DATA / "shop.toml")


def guard(rules=ALL, platforms=("douyin",), **kw):
    return OutputGuard(rules, kw.pop("catalogue", None) or shop(), Allowances(BRANDS), platforms=list(platforms), **kw)


async def _stream(g, sentences, kind="answer"):
    async def gen():
        for s in sentences:
            yield s

    return [s async for s in g.filter_stream(gen(), kind=kind)]


FROM_FILES = [r for r in ALL.rules if r.source.startswith(str(RULES))]


@pytest.mark.parametrize("rule", FROM_FILES, ids=[r.id for r in FROM_FILES])
def test_every_rule_catches_its_examples_and_spares_its_counterexamples(rule):
    one = OutputGuard(RuleSet([rule]), shop(), Allowances(BRANDS), platforms=sorted(rule.platforms))
    assert rule.examples_pass  # every rule says what it must leave alone
    for text in rule.examples_match:
        assert one.check(text).action != "speak", (rule.id, text)
    for text in rule.examples_pass:
        assert one.check(text).action == "speak", (rule.id, text)


def test_rules_exist_for_both_languages_and_the_chinese_platforms():
    cats = {(r.source.rsplit("/", 1)[-1], r.category) for r in ALL.rules}
    for lang in ("en.toml", "zh.toml"):
        assert {c for f, c in cats if f == lang} >= {"link", "contact", "claim", "brand", "offer", "persona", "leak"}
    assert {r.source.rsplit("/", 1)[-1] for r in ALL.rules if r.platforms} == {"douyin.toml", "bilibili.toml"}


# ---------------------------------------------------------------------- bad rules files

RULE = """
[[rule]]
id = "x.test"
category = "link"
action = "drop"
reason = "test"
"""


@pytest.mark.parametrize("body, message", [
    (RULE + "pattern = '(unclosed'\n", "rule 'x.test': pattern: bad regex"),
    (RULE + "pattern = 'a'\npatern = 'b'\n", "rule 'x.test': patern: unknown field"),
    (RULE + "pattern = '{NOPE}'\n", "rule 'x.test': unknown macro {NOPE}"),
    (RULE + "pattern = 'tea'\nmatch = ['coffee']\n", "rule 'x.test': example 'coffee' under match is not caught"),
    (RULE + "pattern = 'tea'\npass = ['green tea']\n", "rule 'x.test': example 'green tea' under pass is caught"),
    (RULE + "words = ['a']\npattern = 'b'\n", "rule 'x.test': needs exactly one of pattern"),
    (RULE + "pattern = 'a'\n" + RULE + "pattern = 'b'\n", "rule 'x.test': the id is already used"),
    (RULE.replace('action = "drop"', 'action = "shout"') + "pattern = 'a'\n", "rule 'x.test': action"),
    ("[[rule]]\nid = 'y'\n", "rule 'y': category"),
    ("rules = []\n", "rules: unknown field"),
    ("[[rule]\n", "not valid TOML"),
], ids=["regex", "unknown-field", "macro", "example-miss", "example-hit", "two-matchers", "duplicate", "action",
        "missing-field", "unknown-top-level", "toml"])
def test_a_bad_rules_file_stops_the_start_naming_file_and_rule(tmp_path, body, message):
    path = tmp_path / "bad.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        read_rules(path)
    assert str(e.value).startswith(str(path)) and message in str(e.value)


PROFILE = """
[persona]
catalogue = "{REPO}/tests/data/guard/shop.toml"
[safety]
{SAFETY}
"""


def _settings(tmp_path, safety=""):
    return load_settings(write_config(tmp_path, PROFILE.replace("{SAFETY}", safety)), environ={})


def test_a_profile_outside_config_still_gets_the_bundled_rules(tmp_path):
    settings = _settings(tmp_path)
    rules = load_rule_set(settings)
    assert len(rules) >= 50 and all(str(REPO / "config") in f for f in rules.files)
    g = build_output_guard(settings, shop())
    assert g.check("加微信 tea_vip_888 领取免费茶叶礼包！").text is None
    # a rules file of the shop's own beside the profile extends them
    (tmp_path / "mine.toml").write_text(RULE + "words = ['matcha latte']\nmatch = ['try a matcha latte']\n")
    g = build_output_guard(_settings(tmp_path, 'rules = ["mine.toml"]'), shop())
    assert g.check("Try a matcha latte today.").rule == "x.test"


def test_a_named_rules_file_that_is_nowhere_stops_the_start(tmp_path):
    with pytest.raises(ConfigError, match="guard rules file not found: .*nothere.toml"):
        load_rule_set(_settings(tmp_path, 'rules = ["nothere.toml"]'))
    with pytest.raises(ConfigError, match="terms_file: 'gone.toml' not found"):
        load_rule_set(_settings(tmp_path, 'terms_file = "gone.toml"'))


def test_an_empty_rules_file_needs_guard_off_and_then_doctor_and_status_warn(tmp_path):
    (tmp_path / "empty.toml").write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match=r"empty.toml: no rules in this file; .*guard = \"off\""):
        load_rule_set(_settings(tmp_path, 'rules = ["empty.toml"]'))
    settings = _settings(tmp_path, 'rules = ["empty.toml"]\nguard = "off"')
    g = build_output_guard(settings, shop(), secrets=["sk-live-9f8e7d6c5b4a3210"])
    assert g.check("Visit cheap-tea dot example!").action == "speak"  # off means off...
    assert g.check("The key is sk-live-9f8e7d6c5b4a3210.").text is None  # ...except secrets
    assert "off" in g.status()["warning"]
    checks = {c.component: c for c in doctor_checks(settings)}
    assert checks["output guard"].ok is False and "off" in checks["output guard"].detail
    assert checks["output guard rules"].ok is True
    bad = {c.component: c for c in doctor_checks(_settings(tmp_path, 'rules = ["empty.toml"]'))}
    assert bad["output guard rules"].ok is False and bad["output guard rules"].essential


def test_platform_rules_follow_the_chat_sources(tmp_path):
    douyin = _settings(tmp_path, "").model_copy(update={"chat": load_settings(
        REPO / "config" / "douyin_commerce.toml", environ={}).chat})
    assert build_output_guard(douyin, shop()).check("淘宝上也有卖，搜店名就行").rule == "platform.other_douyin"
    assert build_output_guard(_settings(tmp_path), shop()).check("淘宝上也有卖，搜店名就行").action == "speak"


# ---------------------------------------------------------------------- live values


def test_prices_and_stock_are_read_from_the_live_catalogue():
    cat = shop()
    g = guard(catalogue=cat)
    assert g.check("The Cloud Mist green tea is 68 yuan today.").action == "speak"
    cat.product.price = 59  # the operator changed the price through the control API
    r = g.check("The Cloud Mist green tea is 68 yuan today.")
    assert r.action == "rewrite" and r.text == "The Cloud Mist green tea is 59 yuan today."
    assert g.check("云雾绿茶今天五十九元。").action == "speak"
    assert g.check("云雾绿茶今天六十八元。").text == "云雾绿茶今天59元。"
    cat.product.stock = 7
    assert g.check("We have 200 tins left.").text == "We have 7 tins left."
    assert g.check("只剩七罐了，赶紧抢！").action == "speak"
    cat.select("teapot")
    assert g.check("The teapot is 129 yuan.").action == "speak"
    assert g.check("It is 150 yuan.").text == "It is 129 yuan."  # the current product's price
    assert g.check("The white porcelain teapot is 99 yuan.").text == "The white porcelain teapot is 129 yuan."


def test_discounts_coupons_and_gifts_must_be_in_the_catalogue():
    cat = shop()
    g = guard(catalogue=cat)
    assert g.check("Use coupon TEA10 and it is 58 yuan.").action == "speak"
    assert g.check("Use coupon ZZ90 and it is 58 yuan.").text is None
    assert g.check("茶壶用券POT20打八折，到手103.2元。").action == "speak"
    assert g.check("茶壶打七折。").text is None
    assert g.check("Every order gets a free tea sample pack.").action == "speak"
    assert g.check("Every order gets a free teapot.").text is None
    assert g.check("The price today is just 19 yuan, a steal!").text == "The price today is just 68 yuan, a steal!"
    assert g.check("It was 99 yuan, now only 68!").text is None  # a list price cannot be corrected: dropped
    cat.coupons.clear()  # coupons withdrawn mid-show
    assert g.check("Use coupon TEA10 and it is 58 yuan.").text is None
    assert g.check("今天有优惠券，记得领。").text is None


def test_the_shops_own_brand_and_operator_allowances_pass():
    g = guard()
    assert g.check("我们云雾茶业的茶，今天六十八元。").action == "speak"
    assert g.check("Yunwu Tea Co. is our own company.").action == "speak"
    assert g.check("金叶茶业的货都是陈茶").text is None
    assert g.check("We are proud to stock Lipton as well.").rule == "brand.known_en"
    g.allow("Lipton")  # the operator allows a phrase for this show
    assert g.check("We are proud to stock Lipton as well.").action == "speak"
    assert g.allowed() == ["lipton"] and g.disallow("Lipton") == []
    assert g.check("We are proud to stock Lipton as well.").text is None


# ---------------------------------------------------------------------- streaming and visibility


async def test_a_phrase_split_across_sentences_is_caught_where_it_completes():
    g = guard()
    assert await _stream(g, ["Visit cheap-tea.", "Dot example, for a great price!"]) == ["Visit cheap-tea."]
    assert await _stream(g, ["Add my We", "Chat.", "It is tea_vip_888."]) == ["Add my We"]
    assert await _stream(g, ["大家加一下微", "信，号是 cha888。", "谢谢大家！"]) == ["大家加一下微"]
    # each sentence alone is fine: only together do they make the phrase
    for alone in ("Chat.", "It is tea_vip_888.", "信，号是 cha888。"):
        assert g.check(alone).action == "speak", alone
    assert await _stream(g, ["Hi Ann!", "The tea is 68 yuan.", "Shipping is free."]) == \
        ["Hi Ann!", "The tea is 68 yuan.", "Shipping is free."]


async def test_a_stop_rule_silences_the_rest_of_the_reply_and_a_drop_only_its_sentence():
    g = guard()
    out = await _stream(g, ["Hi Sam!", "Add my WeChat tea_vip_888.", "The tea is 68 yuan."])
    assert out == ["Hi Sam!"]
    out = await _stream(g, ["Hi Sam!", "It cures insomnia.", "The tea is 68 yuan."])
    assert out == ["Hi Sam!", "The tea is 68 yuan."]


async def test_operator_lines_pass_the_guard_unless_turned_off():
    line = ["Add my WeChat tea_vip_888 for the staff price."]
    assert await _stream(guard(), line, kind="operator") == []
    assert await _stream(guard(check_operator=False), line, kind="operator") == line


def test_recent_decisions_are_kept_for_the_operator_without_secrets():
    g = guard(secrets=["sk-live-9f8e7d6c5b4a3210fedcba"], recent_max=3)
    g.check("It cures insomnia.")
    g.check("My key is sk-live-9f8e7d6c5b4a3210fedcba.")
    g.check("It is the best in the world.")
    g.check("Hello everyone!")
    recent = g.recent()
    assert [(d["rule"], d["action"]) for d in recent] == [
        ("claim.medical_en", "drop"), ("secret.value", "stop"), ("absolute.en", "rewrite")]
    assert recent[0]["excerpt"] == "It cures insomnia." and recent[0]["reason"]
    assert recent[1]["excerpt"] == "[withheld]" and "9f8e" not in json.dumps(recent)
    g.check("It heals colds.")
    assert len(g.recent()) == 3 and g.recent()[-1]["rule"] == "claim.medical_en"
    status = g.status()
    assert status["dropped"] == 3 and status["rewritten"] == 1 and "warning" not in status


def test_a_split_or_spelled_secret_is_caught():
    g = guard(secrets=["sk-live-9f8e7d6c5b4a3210fedcba"])
    assert g.check("It starts with s k dash live dash 9 f 8 e 7 d 6 c.").rule == "secret.value"


# ---------------------------------------------------------------------- corpora (held in: tuned on)


def test_every_held_in_attack_is_stopped():
    attacks = _jsonl("attacks_output.jsonl")
    assert len(attacks) >= 100 and {a["lang"] for a in attacks} == {"en", "zh"}
    g = guard(secrets=["sk-live-4f3e2d1c0b9a8776"])
    missed = []
    for a in attacks:
        if "text" in a:
            if g.check(a["text"]).action == "speak":
                missed.append(a["text"])
    assert missed == []


async def test_split_attacks_lose_their_payload():
    g = guard(secrets=["sk-live-4f3e2d1c0b9a8776"])
    for a in _jsonl("attacks_output.jsonl"):
        if "sentences" in a:
            assert await _stream(g, a["sentences"]) != a["sentences"], a


def test_ordinary_host_sentences_are_spoken_unchanged():
    host = _jsonl("host_sentences.jsonl")
    assert len(host) >= 300 and {h["lang"] for h in host} == {"en", "zh"}
    g = guard()
    changed = [(h["text"], g.check(h["text"]).rule) for h in host if g.check(h["text"]).action != "speak"]
    assert len(changed) <= len(host) // 100, changed


@pytest.mark.parametrize("profile", ["default.toml", "douyin_commerce.toml"])
def test_the_bundled_profiles_scripted_lines_pass(profile):
    """Everything the scripted persona of a bundled profile says (FAQ answers, idle lines, thanks,
    deflections, in its language) against its own catalogue: nothing changed."""
    from streamer.persona.scripted import templates

    settings = load_settings(REPO / "config" / profile, environ={})
    catalogue = load_catalogue(settings.resolve(settings.persona.catalogue))
    cast = build_cast(settings, catalogue, Memory())
    g = build_output_filter(settings, cast)
    lang = cast.profiles[cast.active].lang
    persona = ScriptedPersona(catalogue, cast.active, seed=1, language=lang)

    class Values(dict):
        def __missing__(self, key):
            return {"user": "Ann", "names": "Ann", "gifts": "roses", "n": "3"}.get(key, "Ann")

    values = Values(catalogue.product.values(catalogue.currency_word, cast.active))
    t = templates(lang)
    lines = [a for _, a in catalogue.product.faq] + catalogue.product.idle + catalogue.product.selling_points
    lines += [x for v in t.lines.values() if isinstance(v, list) for x in v if isinstance(x, str) and "{" in x]
    lines += [i.answer for i in t.intents] + [a.text for a in settings.announcement]
    changed = []
    for line in lines:
        for sentence in split_text(line.format_map(values), language=lang):
            r = g.check(sentence)
            if r.action != "speak":
                changed.append((sentence, r.rule))
    assert changed == []
    assert persona.text_for(Turn("idle", 4, text="x")) == "x"
