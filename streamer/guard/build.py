"""The guards from the config: which rules files, for which platforms, with which allowances.

Rules files: ``common.toml``, one file per language in ``[safety] languages`` and one per platform
(``douyin.toml``, ``bilibili.toml``: present for the platforms that need their own rules) from
``[safety] rules_dir``, then the shop's own ``[safety] rules``, the terms file and the profile's
``drop``/``rewrite`` lists. A relative path is looked up beside the profile first, then among the
bundled files (config/ of the package), so a profile kept anywhere still gets the shipped rules; a
file that is named but found nowhere stops the start.

An empty rules file stops the start too unless ``[safety] guard = "off"`` says the operator means
it; with the guard off, only the built-in secret and system-prompt checks run, and ``streamer
doctor`` and the status API say so.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from streamer.config import ConfigError, Settings
from streamer.guard.live import Allowances
from streamer.guard.output import OutputGuard
from streamer.guard.rules import RuleSet, add_terms, read_rules, read_terms, resolve
from streamer.persona.catalogue import Catalogue

PLATFORMS = ("bilibili", "douyin", "twitch")


def platforms_of(settings: Settings) -> list[str]:
    """The platforms whose rules apply: ``[safety] platforms``, else those of the chat sources."""
    if settings.safety.platforms:
        return [p.lower() for p in settings.safety.platforms]
    return sorted({s.type for s in settings.chat if s.type in PLATFORMS})


def rule_files(settings: Settings) -> list[tuple[Path, bool]]:
    """(path, required) for every rules file the profile asks for, in load order."""
    s = settings.safety
    base = settings.base_dir
    d = s.rules_dir.rstrip("/")
    files = [(resolve(f"{d}/common.toml", base), True)]
    files += [(resolve(f"{d}/{lang}.toml", base), True) for lang in s.languages]
    files += [(resolve(f"{d}/{p}.toml", base), False) for p in platforms_of(settings)]
    files += [(resolve(f, base), True) for f in s.rules]
    return files


def load_rule_set(settings: Settings) -> RuleSet:
    s = settings.safety
    rules = RuleSet()
    for path, required in rule_files(settings):
        if not path.is_file():
            if required:
                raise ConfigError(f"{settings.source_file}: safety: guard rules file not found: {path} "
                                  "(looked beside the profile and among the bundled rules)")
            continue
        before = len(rules)
        read_rules(path, rules)
        if len(rules) == before and s.guard == "on":
            raise ConfigError(f"{path}: no rules in this file; an empty rules file needs [safety] guard = \"off\" "
                              "(which leaves only the secret and system-prompt checks)")
    if s.terms_file:
        terms = resolve(s.terms_file, settings.base_dir)
        if not terms.is_file():
            raise ConfigError(f"{settings.source_file}: safety.terms_file: {s.terms_file!r} not found beside the "
                              "profile or among the bundled files")
        read_terms(terms, rules)
    add_terms(rules, f"{settings.source_file} [safety]", list(s.drop), dict(s.rewrite), prefix="profile")
    return rules


def build_output_guard(settings: Settings, catalogue: Catalogue | None, *, protected: Iterable[str] = (),
                       secrets: Iterable[str] = ()) -> OutputGuard:
    s = settings.safety
    guard = OutputGuard(load_rule_set(settings), catalogue, Allowances(list(s.brands), list(s.domains)),
                        protected=list(protected), secrets=[x for x in secrets if x], platforms=platforms_of(settings),
                        mode=s.guard, check_operator=s.check_operator, recent_max=s.recent)
    for phrase in s.allow:
        guard.allow(phrase)
    return guard
