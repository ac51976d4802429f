"""Guard rules as data: TOML files, one per language and per platform, validated at start.

A rules file holds ``[macros]`` (named regex pieces, written ``{NAME}`` in patterns; a list of
words is one too, matched as a prefix tree) and
``[[rule]]`` tables. Each rule has an ``id``, a ``category``, an ``action`` (``stop``: drop the
sentence and the rest of the reply; ``drop``: drop the sentence; ``rewrite``: change it) and a
``reason``, and exactly one matcher:

- ``pattern``: a regex over one view of the text (``view``, default ``spoken``; see
  streamer.guard.text). ``{PY:微信}`` in a pattern stands for that word's toneless syllables, for
  patterns over the ``pinyin`` view (homophones and typed pinyin);
- ``words``: literal terms (normalised like the text; Latin words match whole words only);
- ``homophones``: Chinese words matched by sound (the ``pinyin`` view);
- ``replace``: a table of terms and their replacements (a rewrite, on the raw text).

``mask`` (a regex on the same view) blanks innocent phrases before matching ("free shipping" for a
rule about free gifts). Named groups give a match a meaning the guard checks against the live
catalogue and the show's allowances: ``price``/``money``, ``stock``, ``percent``, ``zhe`` (Chinese
discount tenths), ``code`` (a coupon code), ``coupon``, ``gift``, ``brand``, ``domain``; a match whose
every such group holds an allowed value is not a finding. ``drop_if`` (a regex on the same view)
turns a rewrite into a drop when it matches (a wrong price inside a discount claim cannot be fixed
by putting the right price in); ``only_if`` applies a rule only to text it matches (an English
rewrite only where there is no Chinese). ``group`` names the meaning of a ``words`` match
(``brand``: a named brand the shop may allow). ``platforms`` limits a rule to some platforms.

``match`` and ``pass`` are examples the rule must and must not catch. Rules without catalogue
groups are checked against them when loaded, so a rule that does not do what its examples say
stops the start; the others are checked by the tests against tests/data/guard/shop.toml.

Any error (bad TOML, unknown field, broken regex, unknown macro, a duplicate id, a failing
example) is a ConfigError naming the file and the rule.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streamer.config import REPO_CONFIG_DIR, ConfigError
from streamer.guard.text import CJK, Views, syllable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SEMANTIC_GROUPS = ("price", "money", "stock", "percent", "zhe", "code", "coupon", "gift", "brand", "domain")
ACTIONS = ("stop", "drop", "rewrite")
_MACRO = re.compile(r"\{(PY:[^}]+|[A-Z][A-Z0-9_]*)\}")


class _RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, pattern=r"^[a-z0-9_.\-]+$")
    category: str = Field(min_length=1)
    action: Literal["stop", "drop", "rewrite"]
    reason: str = Field(min_length=1)
    view: Literal["raw", "cased", "text", "spoken", "pinyin", "squashed"] = "spoken"
    pattern: str = ""
    words: list[str] = []
    homophones: list[str] = []
    replace: dict[str, str] = {}
    group: Literal["", "brand", "domain", "gift", "coupon"] = ""
    mask: str = ""
    drop_if: str = ""
    only_if: str = ""
    platforms: list[str] = []
    match: list[str] = []
    pass_: list[str] = Field(default=[], alias="pass")


class _FileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    macros: dict[str, str | list[str]] = {}
    rule: list[_RuleIn] = []


@dataclass(frozen=True)
class Rule:
    id: str
    category: str
    action: str
    reason: str
    view: str
    regex: re.Pattern[str]
    source: str
    mask: re.Pattern[str] | None = None
    drop_if: re.Pattern[str] | None = None
    only_if: re.Pattern[str] | None = None
    replacements: Mapping[str, str] = field(default_factory=dict)
    platforms: frozenset[str] = frozenset()
    examples_match: tuple[str, ...] = ()
    examples_pass: tuple[str, ...] = ()

    @property
    def semantic(self) -> bool:
        """True when a match's meaning depends on the catalogue or the show's allowances."""
        return any(semantic_name(g) for g in self.regex.groupindex)


def semantic_name(group: str) -> str | None:
    """The meaning of a named group ("brand2" means brand: a regex names each group once)."""
    base = group.rstrip("0123456789")
    return base if base in SEMANTIC_GROUPS else None


@dataclass
class RuleSet:
    rules: list[Rule] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    macros: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rules)

    def for_platforms(self, platforms: Iterable[str]) -> list[Rule]:
        wanted = set(platforms)
        return [r for r in self.rules if not r.platforms or r.platforms & wanted]


# ---------------------------------------------------------------------- loading


def read_rules(path: Path, into: RuleSet | None = None) -> RuleSet:
    """Load one rules file into ``into`` (macros of earlier files are visible to later ones)."""
    rules = into if into is not None else RuleSet()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: guard rules file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    try:
        parsed = _FileIn.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{path}: {_describe(e, data)}") from None
    for name, value in parsed.macros.items():
        # a list of words is a macro too: one prefix tree, which a regex engine scans much faster
        rules.macros[name] = value if isinstance(value, str) else _trie(w.lower() for w in value if w)
    known = {r.id for r in rules.rules}
    for item in parsed.rule:
        if item.id in known:
            raise ConfigError(f"{path}: rule {item.id!r}: the id is already used by another rule")
        rule = compile_rule(item, str(path), rules.macros)
        check_examples(rule)
        rules.rules.append(rule)
        known.add(item.id)
    rules.files.append(str(path))
    return rules


def read_terms(path: Path, into: RuleSet) -> RuleSet:
    """The older terms format (``drop = [...]`` and a ``[rewrite]`` table) as two rules."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: safety terms file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    unknown = set(data) - {"drop", "rewrite"}
    if unknown:
        raise ConfigError(f"{path}: unknown field {sorted(unknown)[0]!r} (a terms file has drop and rewrite)")
    add_terms(into, str(path), [str(t) for t in data.get("drop") or []],
              {str(k): str(v) for k, v in (data.get("rewrite") or {}).items()}, prefix="terms")
    into.files.append(str(path))
    return into


def add_terms(rules: RuleSet, source: str, drop: list[str], rewrite: dict[str, str], prefix: str) -> None:
    """Plain term lists (a terms file, or ``[safety] drop``/``rewrite``) as rules."""
    drop = [t for t in drop if t.strip()]
    if drop:
        rules.rules.append(compile_rule(_RuleIn(id=f"{prefix}.drop", category="term", action="drop",
                                                reason="a banned term", words=drop), source, rules.macros))
    rewrite = {k: v for k, v in rewrite.items() if k.strip()}
    if rewrite:
        rules.rules.append(compile_rule(_RuleIn(id=f"{prefix}.rewrite", category="absolute", action="rewrite",
                                                reason="an absolute claim", replace=rewrite), source, rules.macros))


def compile_rule(item: _RuleIn, source: str, macros: Mapping[str, str]) -> Rule:
    where = f"{source}: rule {item.id!r}"
    matchers = [bool(item.pattern), bool(item.words), bool(item.homophones), bool(item.replace)]
    if sum(matchers) != 1:
        raise ConfigError(f"{where}: needs exactly one of pattern, words, homophones, replace")
    view = item.view
    if item.replace:
        if item.action != "rewrite":
            raise ConfigError(f"{where}: replace needs action = \"rewrite\"")
        view = "raw"
        source_re = "|".join(re.escape(k) for k in sorted(item.replace, key=len, reverse=True))
    elif item.words:
        source_re = words_regex(item.words)
        if item.group:
            source_re = f"(?P<{item.group}>{source_re})"
    elif item.homophones:
        view = "pinyin"
        source_re = "|".join(f"(?:{pinyin_regex(w, where)})" for w in item.homophones)
    else:
        source_re = expand(item.pattern, macros, where)
    # every view but raw and cased is lower case already: matching it case-blind only costs time
    flags = re.IGNORECASE if view == "raw" else 0
    regex = _compile(source_re, flags, f"{where}: {'pattern' if item.pattern else 'terms'}")
    mask = _compile(expand(item.mask, macros, where), flags, f"{where}: mask") if item.mask else None
    drop_if = _compile(expand(item.drop_if, macros, where), flags, f"{where}: drop_if") if item.drop_if else None
    only_if = _compile(expand(item.only_if, macros, where), flags, f"{where}: only_if") if item.only_if else None
    if item.group and not item.words:
        raise ConfigError(f"{where}: group applies to words; in a pattern, name the group (?P<{item.group}>...)")
    if item.action == "rewrite" and not item.replace and not any(g in regex.groupindex for g in ("price", "stock")):
        raise ConfigError(f"{where}: a rewrite rule needs replace, or a price or stock group to put the live value in")
    return Rule(item.id, item.category, item.action, item.reason, view, regex, source, mask, drop_if, only_if,
                {k.lower(): v for k, v in item.replace.items()}, frozenset(p.lower() for p in item.platforms),
                tuple(item.match), tuple(item.pass_))


def expand(pattern: str, macros: Mapping[str, str], where: str) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name.startswith("PY:"):
            return f"(?:{pinyin_regex(name[3:], where)})"
        if name not in macros:
            raise ConfigError(f"{where}: unknown macro {{{name}}} (known: {', '.join(sorted(macros)) or 'none'})")
        return f"(?:{expand(macros[name], macros, where)})"

    return _MACRO.sub(one, pattern)


def words_regex(words: Iterable[str]) -> str:
    """Literal terms, normalised like the text, as one prefix tree (a regex engine tries a long
    alternation branch by branch at every position; a tree settles on the first letter). A term that
    starts or ends with a letter or digit only matches at a word edge there ("ass" is not in "class")."""
    normalised = {Views(w.strip()).get("spoken").text for w in words if w.strip()}
    groups: dict[tuple[bool, bool], list[str]] = {}
    for w in normalised:
        groups.setdefault((bool(re.match(r"[a-z0-9]", w)), bool(re.search(r"[a-z0-9]$", w))), []).append(w)
    parts = []
    for (start, end), ws in sorted(groups.items()):
        parts.append((r"(?<![a-z0-9])" if start else "") + f"(?:{_trie(ws)})" + (r"(?![a-z0-9])" if end else ""))
    return "|".join(parts)


def _trie(words: Iterable[str]) -> str:
    tree: dict[str, dict] = {}
    for w in words:
        node = tree
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}
    return _trie_regex(tree)


def _trie_regex(node: dict[str, dict]) -> str:
    ends = "" in node
    branches = [re.escape(ch) + _trie_regex(child) for ch, child in sorted(node.items()) if ch]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if ends:  # a shorter word ends here: the longer ones are tried first, then nothing
        return f"(?:{body})?" if len(branches) == 1 else body[:-1] + "|)"
    return body


def pinyin_regex(word: str, where: str) -> str:
    """A Chinese word as its syllables, matched in the pinyin view: as homophone characters (one
    syllable each, space-separated) or typed ("weixin", "wei xin", "wei-xin")."""
    syllables = [syllable(ch) for ch in word if re.match(f"[{CJK}]", ch)]
    if not syllables or not all(syllables):
        raise ConfigError(f"{where}: {word!r} has no Chinese characters with a known reading")
    return r"(?<![a-z])" + r"[ _.\-]?".join(syllables) + r"(?![a-z])"


def _compile(source: str, flags: int, where: str) -> re.Pattern[str]:
    try:
        return re.compile(source, flags)
    except re.error as e:
        raise ConfigError(f"{where}: bad regex: {e}") from None


def check_examples(rule: Rule) -> None:
    """A rule's own examples, checked as it loads (those that need a catalogue are left to tests)."""
    if rule.semantic:
        return
    from streamer.guard.output import rule_matches

    for text in rule.examples_match:
        if not rule_matches(rule, text):
            raise ConfigError(f"{rule.source}: rule {rule.id!r}: example {text!r} under match is not caught")
    for text in rule.examples_pass:
        if rule_matches(rule, text):
            raise ConfigError(f"{rule.source}: rule {rule.id!r}: example {text!r} under pass is caught")


def _describe(e: ValidationError, data: dict[str, object]) -> str:
    err = e.errors()[0]
    loc = list(err["loc"])
    where = ""
    if len(loc) >= 2 and loc[0] == "rule" and isinstance(loc[1], int):
        items = data.get("rule")
        rid = items[loc[1]].get("id") if isinstance(items, list) and isinstance(items[loc[1]], dict) else None
        where = f"rule {rid!r}: " if rid else f"rule #{loc[1] + 1}: "
        loc = loc[2:]
    field_name = ".".join(str(p) for p in loc)
    msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
    return f"{where}{field_name}: {msg}" if field_name else f"{where}{msg}"


# ---------------------------------------------------------------------- where the files are


def resolve(path: str, base_dir: Path) -> Path:
    """A rules file named in a profile: beside the profile, else the bundled one (config/ of the
    package), so a profile kept outside config/ still gets the shipped rules."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    local = base_dir / p
    if local.is_file():
        return local
    bundled = REPO_CONFIG_DIR / p
    return bundled if bundled.is_file() else local


def bundled_dir() -> Path:
    return REPO_CONFIG_DIR / "safety" / "rules"

