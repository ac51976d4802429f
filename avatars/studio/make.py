"""The three studio paths end to end, each into one all-or-nothing avatar folder.

- ``make_from_prompt``: compose -> estimate -> candidates -> best by face score [-> stylize] -> folder;
- ``make_from_photo``: stylize a photo -> folder;
- ``make_from_description``: speech -> transcript -> prompt -> the prompt path, every intermediate
  (recording, transcript, prompt, candidates, the picture before styling) kept under ``studio/``.

The picture source and the stylizer are passed in (built by the CLI from the user's weights), so the
paths are the same whatever made the pictures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from avatars.prepare import Prepared
from avatars.studio import StudioError
from avatars.studio.composition import Background, compose
from avatars.studio.create import Creation, create_candidates, new_seed
from avatars.studio.face_score import score_portrait
from avatars.studio.portraits import PortraitSource
from avatars.studio.progress import ConsoleReport
from avatars.studio.prompt_writer import PromptDraft
from avatars.studio.recording import check_speech, write_wav
from avatars.studio.staging import Staging, save_picture
from avatars.studio.stylize import Stylizer


@dataclass(frozen=True)
class PromptOptions:
    prompt: str
    negative: str = ""
    seed: int | None = None
    candidates: int = 4
    steps: int = 25
    guidance: float = 7.0
    width: int = 0
    height: int = 0
    background: Background = "neutral"


@dataclass
class Made:
    folder: Path
    picture: Path
    prepared: Prepared
    source: dict[str, Any]
    creation: Creation | None = None


def _size(opts: PromptOptions, portraits: PortraitSource) -> tuple[int, int]:
    w = opts.width or portraits.native_size[0]
    h = opts.height or portraits.native_size[1]
    if w % 8 or h % 8:
        raise StudioError(f"--size {w}x{h}: width and height must be multiples of 8")
    return w, h


def _generate(stage: Staging, portraits: PortraitSource, opts: PromptOptions,
              report: ConsoleReport) -> tuple[np.ndarray, dict[str, Any], Creation]:
    """Candidates into ``studio/candidates``; the best picture and the [source] facts about it."""
    width, height = _size(opts, portraits)
    request = compose(opts.prompt, opts.negative, opts.background, width=width, height=height, steps=opts.steps,
                      guidance=opts.guidance)
    seed = opts.seed if opts.seed is not None else new_seed()
    report.say(f"prompt: {request.prompt}")
    report.estimate(portraits.estimate(request), opts.steps, opts.candidates, portraits.device)

    def keep(cand: Any) -> None:
        save_picture(stage.work(f"candidates/{cand.index + 1:02d}-seed{cand.seed}.png"), cand.image)
        report.candidate(cand)

    creation = create_candidates(portraits, request, seed, opts.candidates, on_step=report.step, on_candidate=keep)
    best = creation.best
    assert best is not None and best.score is not None
    report.say(f"kept candidate {best.index + 1} (seed {best.seed}): {best.score.summary()}")
    source = {"prompt": request.description, "negative_prompt": opts.negative or None, "full_prompt": request.prompt,
              "full_negative_prompt": request.negative, "seed": best.seed, "model": portraits.model,
              "steps": opts.steps, "guidance": opts.guidance, "size": [width, height],
              "scheduler": "DPM++ 2M Karras", "background": opts.background, "face_score": best.score.value,
              "candidates": [{"seed": c.seed, "score": c.score.value if c.score else None,
                              "file": f"studio/candidates/{c.index + 1:02d}-seed{c.seed}.png"}
                             for c in creation.candidates]}
    return best.image, source, creation


def _stylize(stage: Staging, stylizer: Stylizer, rgb: np.ndarray, style: str, report: ConsoleReport,
             face_size: int) -> tuple[np.ndarray, dict[str, Any]]:
    save_picture(stage.work("before_style.png"), rgb)
    report.say(f"stylizing ({style}, {stylizer.weights.name}) ...")
    out = stylizer.stylize(rgb, face_size=face_size)
    score = score_portrait(out)
    if score is None:
        raise StudioError(f"the stylized picture has no face the lip-sync detector finds ({stylizer.weights.name} "
                          "changed it too much): try another --style or weights, or keep the picture unstylized")
    report.say(f"stylized: {score.summary()}")
    return out, {"style": style, "style_weights": str(stylizer.weights), "style_face_score": score.value}


def make_from_prompt(portraits: PortraitSource, opts: PromptOptions, out: str | Path, *, force: bool = False,
                     stylizer: Stylizer | None = None, style: str = "anime", face_size: int = 512,
                     said: str = "", draft: PromptDraft | None = None, report: ConsoleReport | None = None) -> Made:
    """``said``: the user's words when ``opts.prompt`` is their English rewrite by ``draft``'s writer."""
    report = report or ConsoleReport()
    with Staging(out, force) as stage:
        image, source, creation = _generate(stage, portraits, opts, report)
        source = {"kind": "create", "said": said or None, "prompt_writer": draft.writer if draft else None, **source}
        if stylizer is not None:
            image, styled = _stylize(stage, stylizer, image, style, report, face_size)
            source.update(styled)
        info = stage.finish(image, opts.background == "green", source)
    return Made(stage.dest, stage.dest / stage.picture_name, info, source, creation)


def make_from_photo(photo: str | Path, stylizer: Stylizer, out: str | Path, *, style: str = "anime",
                    force: bool = False, face_size: int = 512, report: ConsoleReport | None = None) -> Made:
    report = report or ConsoleReport()
    bgr = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    if bgr is None:
        raise StudioError(f"cannot read {photo} as a picture: pass a .png or .jpg portrait")
    with Staging(out, force) as stage:
        image, styled = _stylize(stage, stylizer, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), style, report, face_size)
        source = {"kind": "stylize", "photo": str(Path(photo).resolve()), **styled}
        info = stage.finish(image, False, source)
    return Made(stage.dest, stage.dest / stage.picture_name, info, source)


@dataclass(frozen=True)
class Heard:
    pcm: np.ndarray
    rate: int
    transcript: str
    language: str


def _write_prompt_file(path: Path, draft: PromptDraft, opts: PromptOptions) -> None:
    path.write_text(json.dumps({"prompt": draft.prompt, "negative_prompt": opts.negative, "writer": draft.writer,
                                "language": draft.language, "green_screen": draft.green_screen,
                                "not_understood": draft.not_understood, "note": draft.note},
                               ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def make_from_description(heard: Heard, draft: PromptDraft, portraits: PortraitSource, opts: PromptOptions,
                          out: str | Path, *, force: bool = False, stylizer: Stylizer | None = None,
                          style: str = "anime", face_size: int = 512, report: ConsoleReport | None = None) -> Made:
    """The prompt path from what was heard; ``opts.prompt`` is replaced by the draft's prompt."""
    report = report or ConsoleReport()
    opts = PromptOptions(draft.prompt, opts.negative, opts.seed, opts.candidates, opts.steps, opts.guidance,
                         opts.width, opts.height, "green" if draft.green_screen else opts.background)
    with Staging(out, force) as stage:
        write_wav(stage.work("recording.wav"), heard.pcm, heard.rate)
        stage.work("transcript.txt").write_text(heard.transcript + "\n", encoding="utf-8")
        _write_prompt_file(stage.work("prompt.json"), draft, opts)
        image, source, creation = _generate(stage, portraits, opts, report)
        source = {"kind": "describe", "transcript": heard.transcript, "language": heard.language,
                  "prompt_writer": draft.writer, **source}
        if stylizer is not None:
            image, styled = _stylize(stage, stylizer, image, style, report, face_size)
            source.update(styled)
        info = stage.finish(image, opts.background == "green", source)
    return Made(stage.dest, stage.dest / stage.picture_name, info, source, creation)


def hear(pcm: np.ndarray, rate: int, transcriber: Any, language: str | None, what: str) -> Heard:
    """Refuse silence, then transcribe; StudioError when nothing was understood."""
    check_speech(pcm, rate, what)
    text = transcriber.transcribe(pcm, rate, language=language).strip()
    if not text:
        raise StudioError(f"no words were recognised in {what}: speak clearly, in Chinese or English, or pass "
                          "--language zh|en")
    lang = language or ("zh" if any("\u3400" <= c <= "\u9fff" for c in text) else "en")
    return Heard(pcm, rate, text, lang)
