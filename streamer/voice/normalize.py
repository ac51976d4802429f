"""Text normalisation for speech, Chinese and English: what a host would say for what chat and the
catalogue write.

``¥39.9`` is 三十九块九 in a Chinese sentence and "thirty-nine point nine yuan" in an English one; 50%
is 百分之五十 / "fifty percent"; 20:30 is 二十点三十分 / "eight thirty p m"; 2 kg is 两公斤 / "two
kilograms"; a model number X200 is read digit by digit (X二零零 / "X two zero zero"); a phone or
order number (7 digits and more) too. Emoji, URLs and markdown marks are removed (a voice reading
"https colon slash slash" is the classic broken stream). Brand names in Latin letters stay inside
Chinese sentences; :func:`split_by_script` then cuts a mixed sentence into runs per language, so each
run reaches a voice that can read it.

Every rule is a regular expression with a function, applied in order; the tables in
``tests/test_voice_normalize.py`` are the specification.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

# ---------------------------------------------------------------------------------------------- numbers, zh
_ZH_DIGITS = "零一二三四五六七八九"
_ZH_UNITS = ["", "十", "百", "千"]
_ZH_BIG = ["", "万", "亿", "万亿"]
_ZH_MEASURE_TWO = "个件只台盒包瓶杯位条次斤公升岁天年份张双套款块毛种颗粒支本辆"


def zh_int(n: int) -> str:
    """An integer in Chinese words: 10 -> 十, 105 -> 一百零五, 10000 -> 一万, 20001 -> 两万零一."""
    if n < 0:
        return "负" + zh_int(-n)
    if n == 0:
        return "零"
    groups = []
    while n:
        groups.append(n % 10000)
        n //= 10000
    out = ""
    zero_pending = False
    for i in range(len(groups) - 1, -1, -1):
        g = groups[i]
        if g == 0:
            zero_pending = bool(out)
            continue
        if out and (zero_pending or g < 1000):
            out += "零"
        out += _zh_group(g) + _ZH_BIG[i]
        zero_pending = False
    if out.startswith("一十"):
        out = out[1:]
    return out


def _zh_group(g: int) -> str:
    digits = [int(d) for d in f"{g:04d}"]
    out = ""
    zero = False
    for pos, d in enumerate(digits):
        unit = _ZH_UNITS[3 - pos]
        if d == 0:
            zero = bool(out)
            continue
        if zero:
            out += "零"
            zero = False
        out += _ZH_DIGITS[d] + unit
    return out


def zh_digits(s: str) -> str:
    return "".join(_ZH_DIGITS[int(c)] if c.isdigit() else c for c in s)


def zh_number(s: str) -> str:
    """``12.50`` -> 十二点五零; ``3`` -> 三."""
    s = s.replace(",", "")
    if "." in s:
        whole, frac = s.split(".", 1)
        return zh_int(int(whole or "0")) + "点" + zh_digits(frac)
    return zh_int(int(s))


def _zh_two(text: str) -> str:
    """二 -> 两 before a measure word (两个, 两斤, 两万) but not in 十二 / 二十 / 第二."""
    return re.sub(r"(?<![十百千万亿零一二三四五六七八九第点])二(?=[" + _ZH_MEASURE_TWO + "万千百])", "两", text)


# ---------------------------------------------------------------------------------------------- numbers, en
_EN_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
            "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_EN_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_EN_BIG = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand")]
_EN_ORDINAL = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
               "nine": "ninth", "twelve": "twelfth"}


def en_int(n: int) -> str:
    """An integer in English words (US style, no "and"): 1299 -> one thousand two hundred ninety-nine."""
    if n < 0:
        return "minus " + en_int(-n)
    if n < 20:
        return _EN_ONES[n]
    if n < 100:
        return _EN_TENS[n // 10] + ("-" + _EN_ONES[n % 10] if n % 10 else "")
    if n < 1000:
        return _EN_ONES[n // 100] + " hundred" + (" " + en_int(n % 100) if n % 100 else "")
    for size, word in _EN_BIG:
        if n >= size:
            return en_int(n // size) + " " + word + (" " + en_int(n % size) if n % size else "")
    return str(n)  # pragma: no cover


def en_digits(s: str) -> str:
    return " ".join(_EN_ONES[int(c)] for c in s if c.isdigit())


def en_number(s: str) -> str:
    s = s.replace(",", "")
    if "." in s:
        whole, frac = s.split(".", 1)
        return en_int(int(whole or "0")) + " point " + en_digits(frac)
    return en_int(int(s))


def en_ordinal(n: int) -> str:
    words = en_int(n)
    head, sep, last = words.rpartition(" " if "-" not in words.rsplit(" ", 1)[-1] else "-")
    if last in _EN_ORDINAL:
        last = _EN_ORDINAL[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + sep + last


def en_year(n: int) -> str:
    if 2000 <= n < 2010:
        return en_int(n)
    hi, lo = divmod(n, 100)
    if lo == 0:
        return en_int(hi) + " hundred"
    return en_int(hi) + " " + (("oh " + _EN_ONES[lo]) if lo < 10 else en_int(lo))


_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]

# ---------------------------------------------------------------------------------------------- cleaning
_URL = re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|cn|net|org|io|example|shop|tv)(?:/\S*)?",
                  re.IGNORECASE)
_MARKDOWN = re.compile(r"[*_`#>|~^\\]{1,}")


def _is_emoji(ch: str) -> bool:
    cp = ord(ch)
    return (0x1F000 <= cp <= 0x1FAFF or 0x2600 <= cp <= 0x27BF or 0x2B00 <= cp <= 0x2BFF or cp in (0x200D, 0xFE0F)
            or 0x1F900 <= cp <= 0x1F9FF or unicodedata.category(ch) == "So")


def clean(text: str) -> str:
    """Emoji, URLs, markdown marks and control characters out; whitespace collapsed."""
    text = _URL.sub(" ", text)
    text = "".join(" " if _is_emoji(ch) or unicodedata.category(ch) in ("Cc", "Cf") else ch for ch in text)
    text = re.sub(r"(?<=\d)~(?=\d)", "到", text)
    text = _MARKDOWN.sub(" ", text)
    text = re.sub(r"[ \t\r\n]+", " ", text).strip()
    return re.sub(r"\s+([，。！？、；：,.!?;:])", r"\1", text)


# ---------------------------------------------------------------------------------------------- rules
Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]
_NUM = r"\d+(?:,\d{3})*(?:\.\d+)?"
_UNITS_ZH = {"kg": "公斤", "g": "克", "mg": "毫克", "ml": "毫升", "l": "升", "cm": "厘米", "mm": "毫米",
             "km": "公里", "m": "米", "mah": "毫安时", "w": "瓦", "v": "伏", "h": "小时", "min": "分钟",
             "斤": "斤", "公斤": "公斤", "克": "克", "毫升": "毫升", "升": "升", "厘米": "厘米", "米": "米"}
_UNITS_EN = {"kg": ("kilogram", "kilograms"), "g": ("gram", "grams"), "mg": ("milligram", "milligrams"),
             "ml": ("milliliter", "milliliters"), "l": ("liter", "liters"), "cm": ("centimeter", "centimeters"),
             "mm": ("millimeter", "millimeters"), "km": ("kilometer", "kilometers"), "m": ("meter", "meters"),
             "mah": ("milliamp hour", "milliamp hours"), "w": ("watt", "watts"), "v": ("volt", "volts"),
             "h": ("hour", "hours"), "min": ("minute", "minutes"), "斤": ("jin", "jin"), "公斤": ("kilogram", "kilograms"),
             "克": ("gram", "grams"), "毫升": ("milliliter", "milliliters"), "升": ("liter", "liters"),
             "厘米": ("centimeter", "centimeters"), "米": ("meter", "meters")}
_UNIT_RE = r"(?P<unit>mAh|kg|mg|ml|mL|km|cm|mm|min|g|L|l|m|W|V|h|斤|公斤|克|毫升|升|厘米|米)(?![A-Za-z])"
_CURRENCY_EN = {"$": ("dollar", "dollars"), "¥": ("yuan", "yuan"), "￥": ("yuan", "yuan"), "€": ("euro", "euros"),
                "£": ("pound", "pounds")}
_CURRENCY_ZH = {"$": "美元", "€": "欧元", "£": "英镑"}


def zh_yuan(amount: str, unit: str = "块") -> str:
    """Spoken yuan: 39.9 -> 三十九块九, 39.99 -> 三十九块九毛九, 0.5 -> 五毛, 199 -> 一百九十九块."""
    amount = amount.replace(",", "")
    whole, _, frac = amount.partition(".")
    frac = (frac + "00")[:2]
    yuan, jiao, fen = int(whole or "0"), int(frac[0]), int(frac[1])
    out = zh_int(yuan) + unit if yuan else ""
    if jiao and fen:
        return out + _ZH_DIGITS[jiao] + "毛" + _ZH_DIGITS[fen]
    if jiao:
        return out + _ZH_DIGITS[jiao] + ("" if yuan else "毛")
    if fen:
        return out + ("零" if yuan else "") + _ZH_DIGITS[fen] + "分"
    return out or "零" + unit


def _zh_time(m: re.Match[str]) -> str:
    h, mi = int(m["h"]), int(m["m"])
    return zh_int(h) + "点" + ("" if mi == 0 else ("零" + zh_int(mi) if mi < 10 else zh_int(mi)) + "分")


def _zh_date(m: re.Match[str]) -> str:
    out = zh_digits(m["y"]) + "年" if m["y"] else ""
    return out + zh_int(int(m["mo"])) + "月" + zh_int(int(m["d"])) + (m["suffix"] or "日")


def _zh_model(m: re.Match[str]) -> str:
    return "".join(zh_digits(part) if part.isdigit() and len(part) >= 3 else zh_int(int(part)) if part.isdigit()
                   else part for part in re.findall(r"\d+|\D+", m[0]))


ZH_RULES: list[Rule] = [
    (re.compile(r"(?P<y>\d{4})[-/.年](?P<mo>\d{1,2})[-/.月](?P<d>\d{1,2})(?P<suffix>[日号])?"), _zh_date),
    (re.compile(r"(?P<y>)(?P<mo>\d{1,2})月(?P<d>\d{1,2})(?P<suffix>[日号])"), _zh_date),
    (re.compile(r"(\d{4})年"), lambda m: zh_digits(m[1]) + "年"),
    (re.compile(r"(?P<h>\d{1,2})[:：](?P<m>\d{2})(?!\d)"), _zh_time),
    (re.compile(r"[¥￥]\s*(" + _NUM + r")\s*(元|块钱|块)?"),
     lambda m: zh_yuan(m[1], "元" if "." not in m[1] and m[2] != "块" else "块") + ("钱" if m[2] == "块钱" else "")),
    (re.compile(r"(" + _NUM + r")\s*(元|块钱|块)(?![\u4e00-\u9fff]*[钱])"),
     lambda m: zh_yuan(m[1], "元" if m[2] == "元" and "." not in m[1] else "块") + ("钱" if m[2] == "块钱" else "")),
    (re.compile(r"([$€£])\s*(" + _NUM + ")"), lambda m: zh_number(m[2]) + _CURRENCY_ZH[m[1]]),
    (re.compile(r"(" + _NUM + r")\s*[%％]"), lambda m: "百分之" + zh_number(m[1])),
    (re.compile(r"(" + _NUM + r")\s*" + _UNIT_RE),
     lambda m: zh_number(m[1]) + _UNITS_ZH[m["unit"].lower() if m["unit"].isascii() else m["unit"]]),
    (re.compile(r"\b[A-Za-z]+\d+[A-Za-z\d]*|\b\d+[A-Za-z]+[A-Za-z\d]*"), _zh_model),
    (re.compile(r"\d{7,}"), lambda m: zh_digits(m[0])),
    (re.compile(r"(?<=\d)\s*[xX×*]\s*(?=\d)"), lambda m: "乘"),
    (re.compile(r"(?<=\d)\s*[-–—]\s*(?=\d)"), lambda m: "到"),
    (re.compile(r"\+"), lambda m: "加"),
    (re.compile(r"&"), lambda m: "和"),
    (re.compile(_NUM), lambda m: zh_number(m[0])),
]


def _en_money(m: re.Match[str]) -> str:
    one, many = _CURRENCY_EN[m["cur"]]
    amount = m["amt"].replace(",", "")
    whole, _, frac = amount.partition(".")
    if m["cur"] in "¥￥":
        return f"{en_number(amount)} {many if amount != '1' else one}"
    words = f"{en_int(int(whole or '0'))} {one if whole == '1' else many}"
    cents = int((frac + "00")[:2]) if frac else 0
    return words + (f" and {en_int(cents)} cent{'s' if cents != 1 else ''}" if cents else "")


def _en_time(m: re.Match[str]) -> str:
    h, mi = int(m["h"]), int(m["m"])
    suffix = (m["ap"] or "").lower().replace(".", "")
    if not suffix and (h >= 13 or h == 0):
        suffix = "pm" if h >= 12 else "am"
    h12 = h % 12 or 12 if suffix else h
    minutes = "o'clock" if mi == 0 and not suffix else "" if mi == 0 else ("oh " + _EN_ONES[mi]) if mi < 10 else en_int(mi)
    spoken = " ".join(w for w in (en_int(h12), minutes, " ".join(suffix)) if w)
    return spoken


def _en_unit(m: re.Match[str]) -> str:
    unit = m["unit"].lower() if m["unit"].isascii() else m["unit"]
    one, many = _UNITS_EN[unit]
    return f"{en_number(m[1])} {one if m[1] == '1' else many}"


def _en_model(m: re.Match[str]) -> str:
    parts = re.findall(r"\d+|\D+", m[0])
    return " ".join(en_digits(p) if p.isdigit() and len(p) >= 3 else en_int(int(p)) if p.isdigit() else p
                    for p in parts)


def _en_date(m: re.Match[str]) -> str:
    return f"{_MONTHS[int(m['mo']) - 1]} {en_ordinal(int(m['d']))}, {en_year(int(m['y']))}"


EN_RULES: list[Rule] = [
    (re.compile(r"\b(?P<y>\d{4})-(?P<mo>0?[1-9]|1[0-2])-(?P<d>\d{1,2})\b"), _en_date),
    (re.compile(r"\b(?P<h>\d{1,2}):(?P<m>\d{2})(?:\s*(?P<ap>[ap]\.?m\.?))?(?![\w.])", re.IGNORECASE), _en_time),
    (re.compile(r"(?P<cur>[$¥￥€£])\s*(?P<amt>" + _NUM + ")"), _en_money),
    (re.compile(r"(" + _NUM + r")\s*(元|块钱|块)"), lambda m: f"{en_number(m[1])} yuan"),
    (re.compile(r"(" + _NUM + r")\s*[%％]"), lambda m: f"{en_number(m[1])} percent"),
    (re.compile(r"\b(\d+)(st|nd|rd|th)\b"), lambda m: en_ordinal(int(m[1]))),
    (re.compile(r"(" + _NUM + r")\s*" + _UNIT_RE), _en_unit),
    (re.compile(r"\b(?:in|since|from|until|by|year)\s+(1[1-9]\d\d|20\d\d)\b", re.IGNORECASE),
     lambda m: m[0][: m.start(1) - m.start(0)] + en_year(int(m[1]))),
    (re.compile(r"\b[A-Za-z]+\d+[A-Za-z\d]*|\b\d+[A-Za-z]+[A-Za-z\d]*"), _en_model),
    (re.compile(r"\d{7,}"), lambda m: en_digits(m[0])),
    (re.compile(r"(?<=\d)\s*[xX×]\s*(?=\d)"), lambda m: " by "),
    (re.compile(r"(?<=\d)\s*[-–~]\s*(?=\d)"), lambda m: " to "),
    (re.compile(r"\s*&\s*"), lambda m: " and "),
    (re.compile(r"(?<=\d)\s*\+"), lambda m: " plus"),
    (re.compile(r"-?" + _NUM), lambda m: en_number(m[0]) if not m[0].startswith("-") else "minus " + en_number(m[0][1:])),
]


def _apply(text: str, rules: list[Rule]) -> str:
    for pattern, fn in rules:
        text = pattern.sub(fn, text)
    return text


def normalize_zh(text: str) -> str:
    return _zh_two(_apply(clean(text), ZH_RULES)).strip()


def normalize_en(text: str) -> str:
    out = _apply(clean(text), EN_RULES)
    return re.sub(r"\s+", " ", out).strip()


def normalize(text: str, language: str = "en") -> str:
    """``text`` as it should be spoken, in the sentence's own language (see :func:`sentence_language`)."""
    lang = sentence_language(text, language)
    out = normalize_zh(text) if lang == "zh" else normalize_en(text)
    return out if speakable(out) else ""


def speakable(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


# ---------------------------------------------------------------------------------------------- scripts
def is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def sentence_language(text: str, default: str = "en") -> str:
    """"zh" or "en" by what dominates: a Chinese character weighs as much as four Latin letters
    (a name like 小明 in an English sentence keeps it English, a brand in a Chinese one keeps it Chinese)."""
    cjk = sum(1 for ch in text if is_cjk(ch))
    latin = sum(1 for ch in text if ch.isascii() and ch.isalpha())
    if cjk == 0 and latin == 0:
        return base_language(default)
    if cjk * 4 > latin:
        return "zh"
    if cjk * 4 < latin:
        return "en"
    return base_language(default)


def split_by_script(text: str, default: str = "en") -> list[tuple[str, str]]:
    """Cut a mixed sentence into runs of one language each: ``[("zh", "这款"), ("en", "AeroBrew"), ...]``.

    Digits, spaces and punctuation stay with the run they are in; runs with nothing speakable join a
    neighbour."""
    runs: list[list[str]] = []
    for ch in text:
        lang = "zh" if is_cjk(ch) else "en" if ch.isascii() and ch.isalpha() else ""
        if runs and (not lang or runs[-1][0] in ("", lang)):
            if not runs[-1][0]:
                runs[-1][0] = lang
            runs[-1][1] += ch
        else:
            runs.append([lang, ch])
    out: list[tuple[str, str]] = []
    for lang, run in runs:
        lang = lang or base_language(default)
        if out and (out[-1][0] == lang or not speakable(run)):
            out[-1] = (out[-1][0], out[-1][1] + run)
        else:
            out.append((lang, run))
    return [(lang, run.strip()) for lang, run in out if run.strip()]


def base_language(language: str) -> str:
    """A language setting ("zh-CN", "Chinese (Mandarin)", "中文", "en_US", "English") as "zh" or "en"."""
    s = language.strip().lower()
    if s.startswith(("zh", "cmn", "chinese", "mandarin", "中", "汉", "普通话")):
        return "zh"
    return "en"
