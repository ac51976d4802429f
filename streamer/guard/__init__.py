"""Safety between chat and voice: what the model may read, and what the host may say.

In (streamer.guard.inbound): viewer content reaches the model only as JSON-encoded data inside
``<viewer>`` tags; names and earlier questions are checked like message text; messages that try to
steer the host are recognised and deflected; deflected messages never enter the model's context.

Out (streamer.guard.output): one output guard between the persona and the voice judges every
sentence (LLM answers, scripted lines, paraphrased idle lines, operator lines unless turned off)
against rules kept as data (config/safety/rules/*.toml, streamer.guard.rules) and the live
catalogue (streamer.guard.live), and speaks, rewrites or drops it.

Built from the config by streamer.guard.build; ``streamer doctor`` checks the rules
(streamer.guard.doctor).
"""

from streamer.guard.inbound import (
    InjectionGuard,
    context_line,
    quote_viewer,
    safe_name,
    viewer_line,
)
from streamer.guard.live import Allowances, LiveValues
from streamer.guard.output import FilterResult, GuardContext, OutputGuard
from streamer.guard.rules import Rule, RuleSet, read_rules
from streamer.guard.text import normalise

OutputFilter = OutputGuard
"""The name the director and older code use for the output guard."""

__all__ = [
    "Allowances", "FilterResult", "GuardContext", "InjectionGuard", "LiveValues", "OutputFilter", "OutputGuard",
    "Rule", "RuleSet", "context_line", "normalise", "quote_viewer", "read_rules", "safe_name", "viewer_line",
]
