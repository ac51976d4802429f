"""Text normalisation for speech: the tables are the specification (what a host says for what is written)."""

import pytest

from streamer.voice.normalize import (
    base_language,
    en_int,
    normalize,
    normalize_en,
    normalize_zh,
    sentence_language,
    split_by_script,
    zh_int,
)

ZH = [
    ("¥39.9", "三十九块九"),
    ("这款咖啡机只要¥39.9！", "这款咖啡机只要三十九块九！"),
    ("39.99元", "三十九块九毛九"),
    ("¥199", "一百九十九元"),
    ("0.5元", "五毛"),
    ("2.05元", "两块零五分"),
    ("满200减30", "满两百减三十"),
    ("打8.8折", "打八点八折"),
    ("50%的折扣", "百分之五十的折扣"),
    ("2024-11-11开抢", "二零二四年十一月十一日开抢"),
    ("11月11日晚上20:30开始", "十一月十一日晚上二十点三十分开始"),
    ("8:05", "八点零五分"),
    ("12:00整点开抢", "十二点整点开抢"),
    ("2斤", "两斤"),
    ("买2件", "买两件"),
    ("第2件半价", "第二件半价"),
    ("5kg装", "五公斤装"),
    ("500ml", "五百毫升"),
    ("2.5kg", "二点五公斤"),
    ("X200型号", "X二零零型号"),
    ("iPhone15", "iPhone十五"),
    ("订单号13800138000", "订单号一三八零零一三八零零零"),
    ("3~5天发货", "三到五天发货"),
    ("3-5天", "三到五天"),
    ("😀好喝😀 https://shop.example/a", "好喝"),
    ("AeroBrew只要$49", "AeroBrew只要四十九美元"),
    ("1,299元", "一千二百九十九元"),
    ("**限时**秒杀", "限时 秒杀"),
    ("10000", "一万"),
    ("20001", "两万零一"),
    ("105", "一百零五"),
    ("1000000", "一零零零零零零"),
]

EN = [
    ("¥39.9", "thirty-nine point nine yuan"),
    ("39.9元", "thirty-nine point nine yuan"),
    ("$49", "forty-nine dollars"),
    ("$1", "one dollar"),
    ("$49.99", "forty-nine dollars and ninety-nine cents"),
    ("It is 50% off", "It is fifty percent off"),
    ("See you at 20:30", "See you at eight thirty p m"),
    ("9:05 pm", "nine oh five p m"),
    ("at 9:00", "at nine o'clock"),
    ("5kg", "five kilograms"),
    ("1kg", "one kilogram"),
    ("500ml", "five hundred milliliters"),
    ("3斤", "three jin"),
    ("X200 and K8", "X two zero zero and K eight"),
    ("order 13800138000", "order one three eight zero zero one three eight zero zero zero"),
    ("on 2024-11-11", "on November eleventh, twenty twenty-four"),
    ("1st 2nd 3rd 21st", "first second third twenty-first"),
    ("since 1999", "since nineteen ninety-nine"),
    ("3-5 days", "three to five days"),
    ("Shipping is free 😀 see https://x.com/y", "Shipping is free see"),
    ("1,299 units", "one thousand two hundred ninety-nine units"),
    ("-5 degrees", "minus five degrees"),
    ("3.14", "three point one four"),
    ("Tom & Jerry", "Tom and Jerry"),
]


@pytest.mark.parametrize(("text", "spoken"), ZH)
def test_chinese(text, spoken):
    assert normalize_zh(text) == spoken


@pytest.mark.parametrize(("text", "spoken"), EN)
def test_english(text, spoken):
    assert normalize_en(text) == spoken


@pytest.mark.parametrize(("n", "zh", "en"), [
    (0, "零", "zero"), (10, "十", "ten"), (11, "十一", "eleven"), (110, "一百一十", "one hundred ten"),
    (1001, "一千零一", "one thousand one"), (10010, "一万零一十", "ten thousand ten"),
    (100000000, "一亿", "one hundred million"), (-3, "负三", "minus three"),
])
def test_integers(n, zh, en):
    assert zh_int(n) == zh and en_int(n) == en


@pytest.mark.parametrize(("text", "lang"), [
    ("Thanks 小明, the price is $49", "en"), ("这款AeroBrew咖啡机只要¥39.9", "zh"), ("好", "zh"), ("ok", "en"),
])
def test_sentence_language(text, lang):
    assert sentence_language(text, "en") == lang


def test_mixed_sentence_splits_into_language_runs():
    assert split_by_script("这款AeroBrew咖啡机只要三十九块九。", "zh") == [
        ("zh", "这款"), ("en", "AeroBrew"), ("zh", "咖啡机只要三十九块九。")]
    assert split_by_script("Hi 小明, welcome!", "en") == [("en", "Hi"), ("zh", "小明,"), ("en", "welcome!")]


def test_numbers_follow_the_sentence_language_not_the_show_language():
    assert normalize("Thanks 小明, that is $49.", "zh") == "Thanks 小明, that is forty-nine dollars."
    assert normalize("这款AeroBrew只要$49", "en") == "这款AeroBrew只要四十九美元"


def test_nothing_speakable_normalises_to_empty():
    assert normalize("😀🎉 https://shop.example/x !!", "zh") == ""


@pytest.mark.parametrize(("setting", "code"), [("zh", "zh"), ("zh-CN", "zh"), ("Chinese (Mandarin)", "zh"),
                                               ("中文", "zh"), ("en", "en"), ("English", "en"), ("en_US", "en")])
def test_language_settings(setting, code):
    assert base_language(setting) == code
