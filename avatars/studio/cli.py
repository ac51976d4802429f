"""``streamer avatar create | stylize | describe``: the studio's commands under ``streamer avatar``.

Options fall back to the profile's ``[studio]`` section, then to built-in defaults. Heavy imports
happen inside the commands, so ``streamer --help`` stays quick without the studio extra.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from avatars.studio import StudioError


def _settings(path: str | None) -> Any:
    from streamer.cli import _settings as load

    return load(path)


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WIDTHxHEIGHT, e.g. 512x512") from None
    return w, h


def _add_generation(p: argparse.ArgumentParser) -> None:
    p.add_argument("--negative", default="", help="what to avoid, added to the built-in lip-sync negative prompt")
    p.add_argument("--seed", type=int, help="seed of the first candidate (candidate i uses seed+i); default: random")
    p.add_argument("--candidates", type=int, help="how many pictures to make and score (default [studio] candidates)")
    p.add_argument("--steps", type=int, help="denoising steps (default [studio] steps)")
    p.add_argument("--guidance", type=float, help="classifier-free guidance scale (default [studio] guidance)")
    p.add_argument("--size", type=_size, help="WIDTHxHEIGHT, multiples of 8 (default: the model's native size)")
    p.add_argument("--background", choices=["neutral", "green"], help="plain studio backdrop or a green screen")
    p.add_argument("--model", help="Stable Diffusion 1.5/SDXL: diffusers folder or .safetensors (default [studio] model)")
    p.add_argument("--sd-config", help="for a single-file checkpoint: a diffusers folder with its configs")
    _add_common(p)
    p.add_argument("--style", choices=["none", "anime", "anime_v1", "paprika", "celeba"], default="none",
                   help="stylize the result with AnimeGANv2 (default none)")
    p.add_argument("--weights", help="AnimeGANv2 .pt weights (default [studio] anime_weights)")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", required=True,
                   help="avatar folder to create (host.png names the picture; its folder is host/)")
    p.add_argument("--force", action="store_true", help="replace an existing avatar folder")
    p.add_argument("--device", help="auto (CUDA with float16 when present), cpu or cuda (default [studio] device)")
    p.add_argument("-c", "--config", help="TOML profile (default: config/default.toml)")


def add_commands(sub: Any, avatar_sub: Any) -> None:
    p = avatar_sub.add_parser("create", help="make a host portrait from a text prompt with Stable Diffusion")
    p.add_argument("--prompt", required=True, help="who the host is (Chinese or English)")
    _add_generation(p)
    p.set_defaults(func=cmd_create)

    p = avatar_sub.add_parser("stylize", help="turn a portrait photo into an anime-style host (AnimeGANv2)")
    p.add_argument("photo")
    p.add_argument("--style", choices=["anime", "anime_v1", "paprika", "celeba"], default="anime")
    p.add_argument("--weights", help="AnimeGANv2 .pt weights (default [studio] anime_weights)")
    p.add_argument("--face-size", type=int, default=512, help="resolution the face is stylized at (default 512)")
    _add_common(p)
    p.set_defaults(func=cmd_stylize)

    p = avatar_sub.add_parser("describe", help="say what the host looks like; speech -> prompt -> picture")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--wav", help="a recording of the description (WAV, MP3, M4A ...)")
    how.add_argument("--record", type=float, metavar="SECONDS", help="record this long from the microphone")
    p.add_argument("--source", help="PulseAudio source to record from (default: the default microphone)")
    p.add_argument("--language", choices=["auto", "zh", "en"], default="auto", help="language spoken (default auto)")
    p.add_argument("--prompt-writer", choices=["auto", "llm", "template"], default="auto",
                   help="auto: the persona's LLM endpoint when configured, else the zh/en template")
    p.add_argument("--whisper-model", help="faster-whisper model folder (default: the packaged base model)")
    _add_generation(p)
    p.set_defaults(func=cmd_describe)


def _fail(command: str, e: Exception) -> int:
    print(f"avatar {command}: {e}", file=sys.stderr)
    return 1


def _options(args: argparse.Namespace, st: Any, prompt: str) -> Any:
    from avatars.studio.make import PromptOptions

    w, h = args.size or (st.width, st.height)
    return PromptOptions(prompt, args.negative, args.seed, args.candidates or st.candidates, args.steps or st.steps,
                         st.guidance if args.guidance is None else args.guidance, w, h,
                         args.background or st.background)


def _locate(args: argparse.Namespace, settings: Any) -> Any:
    """The model's kind and files, checked before anything slow runs."""
    from avatars.studio.sd_model import locate_model

    st = settings.studio
    model = args.model or (str(settings.resolve(st.model)) if st.model else None)
    config = args.sd_config or (str(settings.resolve(st.sd_config)) if st.sd_config else None)
    return locate_model(model, config)


def _portraits(args: argparse.Namespace, settings: Any, source: Any) -> Any:
    from avatars.studio.portraits import DiffusersPortraits

    print(f"loading {source.description} ...", file=sys.stderr, flush=True)
    return DiffusersPortraits(source, args.device or settings.studio.device)


def _stylizer(args: argparse.Namespace, settings: Any, style: str) -> Any:
    from avatars.studio.stylize import Stylizer, default_weights

    st = settings.studio
    weights = args.weights or default_weights(style, str(settings.resolve(st.anime_weights)) if st.anime_weights else "")
    return Stylizer(weights, args.device or st.device)


def _done(made: Any) -> int:
    p = made.prepared
    print(f"avatar ready: {made.folder} (picture {made.picture.name}, face at {tuple(int(v) for v in p.boxes[0])}, "
          f"prepared; cache {p.cache})")
    print(f"use it: [avatar] image = \"{made.folder}\"  (or streamer say \"hello\" -o hello.mp4 --avatar {made.folder})")
    return 0


def _draft(text: str, settings: Any, writer: str = "auto") -> Any:
    """The English prompt for ``text`` (the LLM when configured, else the template), and what was noted."""
    from avatars.studio.prompt_writer import write_prompt

    persona = settings.persona
    draft = write_prompt(text, writer, base_url=persona.base_url, kind=persona.kind, model=persona.model,  # type: ignore[arg-type]
                         api_key=os.environ.get(persona.api_key_env, ""))
    print(f"prompt ({draft.writer}): {draft.prompt}", file=sys.stderr)
    for note in (draft.note, f"not understood: {draft.not_understood}" if draft.not_understood else ""):
        if note:
            print(f"  note: {note}", file=sys.stderr)
    return draft


def cmd_create(args: argparse.Namespace) -> int:
    from avatars.studio.make import make_from_prompt
    from avatars.studio.prompt_writer import is_chinese

    settings = _settings(args.config)
    try:
        source = _locate(args, settings)
        stylizer = None if args.style == "none" else _stylizer(args, settings, args.style)
        draft = _draft(args.prompt, settings) if is_chinese(args.prompt) else None
        prompt = draft.prompt if draft else args.prompt
        portraits = _portraits(args, settings, source)
        made = make_from_prompt(portraits, _options(args, settings.studio, prompt), args.output, force=args.force,
                                stylizer=stylizer, style=args.style, said=args.prompt if draft else "", draft=draft)
    except StudioError as e:
        return _fail("create", e)
    return _done(made)


def cmd_stylize(args: argparse.Namespace) -> int:
    from avatars.studio.make import make_from_photo

    settings = _settings(args.config)
    try:
        made = make_from_photo(args.photo, _stylizer(args, settings, args.style), args.output, style=args.style,
                               force=args.force, face_size=args.face_size)
    except StudioError as e:
        return _fail("stylize", e)
    return _done(made)


def _listen(args: argparse.Namespace) -> tuple[Any, int, str]:
    from avatars.studio.recording import RATE, read_audio, record

    if args.wav:
        pcm, rate = read_audio(args.wav)
        return pcm, rate, args.wav
    print(f"recording {args.record:g} s: describe the host now (Ctrl-C stops early) ...", file=sys.stderr, flush=True)
    return record(args.record, args.source), RATE, "the recording"


def _heard(args: argparse.Namespace) -> Any:
    from avatars.studio.make import hear
    from streamer.voice.asr import ASRError, WhisperTranscriber

    pcm, rate, what = _listen(args)
    try:
        transcriber = WhisperTranscriber(args.whisper_model)
    except ASRError as e:
        raise StudioError(str(e)) from None
    heard = hear(pcm, rate, transcriber, None if args.language == "auto" else args.language, what)
    print(f"heard ({heard.language}): {heard.transcript}", file=sys.stderr)
    return heard


def cmd_describe(args: argparse.Namespace) -> int:
    from avatars.studio.make import make_from_description

    settings = _settings(args.config)
    try:
        source = _locate(args, settings)
        stylizer = None if args.style == "none" else _stylizer(args, settings, args.style)
        heard = _heard(args)
        draft = _draft(heard.transcript, settings, args.prompt_writer)
        portraits = _portraits(args, settings, source)
        made = make_from_description(heard, draft, portraits, _options(args, settings.studio, draft.prompt),
                                     args.output, force=args.force, stylizer=stylizer, style=args.style)
    except StudioError as e:
        return _fail("describe", e)
    return _done(made)
