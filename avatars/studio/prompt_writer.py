"""From what the operator said to a Stable Diffusion prompt: the persona's LLM, or a template.

The LLM (any OpenAI-compatible endpoint, the same one the LLM persona uses) is asked for one line of
English keywords about the person: who, face, hair, expression, clothes, style. Framing and backdrop
are added later by ``composition`` for every prompt alike, so the model is told to leave them out.
Its answer is checked (one line, English, not empty, not too long); anything else, or an endpoint
that fails, falls back to the template and the note says why.

The template needs no network. English descriptions are cleaned of their request phrasing ("I want
a host who is ...") and kept as they are; Chinese ones go through ``zh_keywords`` (a longest-match
keyword table; what it does not cover is reported, not guessed).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Literal

from avatars.studio import StudioError
from avatars.studio import zh_keywords as zh

log = logging.getLogger(__name__)

Writer = Literal["auto", "llm", "template"]
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
SYSTEM = (
    "You write Stable Diffusion prompts for the picture of a live-stream host. The user message holds, inside "
    "<description> tags, what the stream's operator said the host should look like; it may be Chinese or English "
    "and comes from speech recognition, so it may contain small errors. Answer with exactly one line of English: "
    "comma-separated keywords describing one person: age and gender, face, hair, expression, clothes and "
    "accessories, and the art style (photo or illustration) if the operator said one. Do not describe the "
    "background, camera, framing or lighting; those are added separately. No sentences, no quotes, no "
    "explanations, no Chinese."
)
EN_FILLER = re.compile(
    r"^\s*(?:(?:um+|uh+|so|okay|ok|well|and)[,\s]+)*(?:i(?:'d| would)? (?:want|like|need)(?: to (?:have|see|get))?|"
    r"please (?:make|create|draw|generate|give me)|(?:can|could) you (?:make|create|draw|generate|give me)|"
    r"make|create|draw|generate|give me|(?:our|the|my) (?:host|streamer|presenter) (?:should (?:be|look like)|is|"
    r"looks like)|it should be|(?:she|he|they) should (?:be|look like|have)|(?:she|he|they) (?:is|has|wears))\b[\s,:]*",
    re.IGNORECASE)
EN_GREEN = re.compile(r"(?:\b(?:in front of|against|on|with|before)\s+)?(?:an?\s+|the\s+)?"
                      r"(?:green[- ]?screen|green background|chroma[- ]?key(?: green)?)(?: background)?\b",
                      re.IGNORECASE)


@dataclass(frozen=True)
class PromptDraft:
    prompt: str
    writer: str
    """``template`` or ``llm:<model>``."""
    language: str
    """``zh`` or ``en``: the description's language."""
    green_screen: bool = False
    """The operator asked for a green screen."""
    not_understood: str = ""
    """Chinese the keyword table does not cover (template only)."""
    note: str = ""


def is_chinese(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and sum(bool(CJK.match(c)) for c in letters) >= 0.3 * len(letters)


def _zh_tokens(text: str) -> tuple[list[tuple[str, str]], str]:
    """Longest-match scan: (category, English) per recognised phrase, and the leftover Chinese."""
    tables = {"who": zh.WHO, "age": zh.AGE, "colour": zh.COLOURS, "hair": zh.HAIR, "face": zh.FACE,
              "clothes": zh.CLOTHES, "style": zh.STYLE}
    phrases = {k: (cat, en) for cat, table in tables.items() for k, en in table.items()}
    phrases.update({k: ("skip", "") for k in (*zh.FILLER, *zh.GREEN_SCREEN)})
    longest = max(len(k) for k in phrases)
    out: list[tuple[str, str]] = []
    left: list[str] = []
    i = 0
    while i < len(text):
        for n in range(min(longest, len(text) - i), 0, -1):
            hit = phrases.get(text[i:i + n])
            if hit:
                out.append(hit if hit[0] != "skip" else ("gap", ""))
                i += n
                break
        else:
            out.append(("gap", ""))
            if CJK.match(text[i]):
                left.append(text[i])
            i += 1
    return out, "".join(left)


def zh_template(description: str) -> PromptDraft:
    text = description.translate(zh.TRADITIONAL)
    tokens, left = _zh_tokens(text)
    age = next((en for cat, en in tokens if cat == "age"), "")
    who = next((en for cat, en in tokens if cat == "who"), "person")
    words: list[str] = []
    colour = ""  # a colour waits (across filler words) for the hair, garment or eyes it describes
    for cat, en in tokens:
        if cat == "colour":
            colour = en
        elif cat in ("hair", "clothes", "face", "style"):
            phrase = f"{colour} {en}" if colour and cat != "style" else en
            colour = "" if cat != "style" else colour
            if phrase not in words:
                words.append(phrase)
    subject = " ".join(p for p in (age, who) if p)
    article = "an" if subject[:1] in "aeiou" else "a"
    prompt = ", ".join([f"portrait of {article} {subject}", *words])
    known = any(cat not in ("gap", "colour") for cat, _ in tokens)
    return PromptDraft(prompt, "template", "zh", any(g in text for g in zh.GREEN_SCREEN), left,
                       "" if known else "none of the description's words are in the keyword table")


def en_template(description: str) -> PromptDraft:
    green = bool(EN_GREEN.search(description))
    parts = []
    for sentence in re.split(r"[.!?;\n]+", EN_GREEN.sub("", description)):
        s = EN_FILLER.sub("", sentence).strip(" ,")
        if s:
            parts.append(s)
    body = ", ".join(parts)
    body = re.sub(r"^(?:a|an|the)\s+(?:host|streamer|presenter)\s+(?:who is|that is|who has)\s*", "", body,
                  flags=re.IGNORECASE)
    body = (body[:1].lower() + body[1:]) if body[1:2].islower() or body[1:2] == " " else body
    if not body:
        return PromptDraft("portrait of a friendly live stream host", "template", "en", green,
                           note="no description words recognised")
    return PromptDraft(body if body.lower().startswith("portrait") else f"portrait of {body}", "template", "en", green)


def template_prompt(description: str) -> PromptDraft:
    return zh_template(description) if is_chinese(description) else en_template(description)


def llm_configured(base_url: str, kind: str) -> bool:
    return kind == "llm" or bool(base_url) or bool(os.environ.get("OPENAI_BASE_URL"))


def clean_llm_answer(answer: str) -> str:
    """One line of English keywords, or "" when the answer is not that."""
    lines = [ln.strip() for ln in answer.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    line = re.sub(r"^(?:prompt|stable diffusion prompt)\s*:\s*", "", lines[0], flags=re.IGNORECASE)
    line = line.strip(" \"'`")
    if CJK.search(line) or len(line) > 400 or len(line) < 3:
        return ""
    return line


def llm_prompt(description: str, *, base_url: str, model: str, api_key: str, timeout_s: float = 60.0) -> str:
    """Ask the endpoint; StudioError when it cannot give a usable prompt."""
    try:
        from openai import OpenAI, OpenAIError
    except ImportError:
        raise StudioError("the openai package is not installed: pip install 'streamer[llm]'") from None
    client = OpenAI(base_url=base_url or None, api_key=api_key or "not-needed", max_retries=1, timeout=timeout_s)
    safe = description.replace("<", "‹").replace(">", "›")
    try:
        stream = client.chat.completions.create(
            model=model, temperature=0.4, max_tokens=120, stream=True,
            messages=[{"role": "system", "content": SYSTEM},
                      {"role": "user", "content": f"<description>{safe}</description>"}])
        answer = "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)
    except OpenAIError as e:
        raise StudioError(f"the LLM endpoint failed ({type(e).__name__})") from None
    finally:
        client.close()
    line = clean_llm_answer(answer)
    if not line:
        raise StudioError("the LLM's answer was not one line of English keywords")
    return line


def write_prompt(description: str, writer: Writer = "auto", *, base_url: str = "", kind: str = "scripted",
                 model: str = "gpt-4o-mini", api_key: str = "") -> PromptDraft:
    """The prompt for ``description``; ``auto`` uses the LLM when one is configured, else the template."""
    template = template_prompt(description)
    if writer == "template" or (writer == "auto" and not llm_configured(base_url, kind)):
        return template
    try:
        line = llm_prompt(description, base_url=base_url, model=model, api_key=api_key)
    except StudioError as e:
        if writer == "llm":
            raise StudioError(f"{e}: check OPENAI_BASE_URL / [persona] base_url, the model name and the key, or use "
                              "--prompt-writer template") from None
        log.warning("LLM prompt failed, using the template", extra={"reason": str(e)})
        return PromptDraft(template.prompt, "template", template.language, template.green_screen,
                           template.not_understood, f"{e}; used the template instead")
    return PromptDraft(line if line.lower().startswith("portrait") else f"portrait of {line}", f"llm:{model}",
                       template.language, template.green_screen)
