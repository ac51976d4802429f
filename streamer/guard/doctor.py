"""``streamer doctor`` checks for the guards: the rules load, and whether the output guard is on."""

from __future__ import annotations

from streamer.config import REPO_CONFIG_DIR, ConfigError, Settings
from streamer.doctor import Check
from streamer.guard.build import load_rule_set, platforms_of


def doctor_checks(settings: Settings) -> list[Check]:
    try:
        rules = load_rule_set(settings)
    except ConfigError as e:
        return [Check("output guard rules", False, str(e), "fix the rules file named above", essential=True)]
    bundled = sum(1 for f in rules.files if str(REPO_CONFIG_DIR) in f and not f.startswith(str(settings.base_dir)))
    detail = f"{len(rules)} rules from {len(rules.files)} files"
    if bundled:
        detail += f" ({bundled} bundled)"
    platforms = platforms_of(settings)
    detail += f"; platforms: {', '.join(platforms) or 'none'}"
    out = [Check("output guard rules", True, detail, essential=True)]
    if settings.safety.guard == "off":
        out.append(Check("output guard", False, "off: only secrets and the system prompt are kept from the voice",
                         "set [safety] guard = \"on\" (links, contacts, claims, brands and prices go unchecked)"))
    else:
        op = "operator lines too" if settings.safety.check_operator else "operator lines are spoken as typed"
        out.append(Check("output guard", True, f"on ({op})"))
    return out
