"""``streamer say``: render one utterance offline to an MP4, through the same voice, avatar, renderer and
clock as the live stream (built by the same builders; the clock runs unpaced). The quickest way to see
the avatar speak."""

from __future__ import annotations

import logging
from pathlib import Path

from overlays import draw_subtitle
from streamer import build
from streamer.clock import OutputClock
from streamer.config import Settings
from streamer.persona.sentences import split_text
from streamer.sinks.base import Tick
from streamer.sinks.recording import MP4Writer
from streamer.speech import Segment, Utterance
from streamer.voice.base import NothingToSay as NothingSpeakable
from streamer.voice.factory import build_voice
from streamer.voice.normalize import sentence_language

log = logging.getLogger(__name__)


class NothingToSay(ValueError):
    """The text has nothing speakable in it."""


def render_say(settings: Settings, text: str, out: Path, avatar: str | None = None, lead_s: float = 0.5,
               tail_s: float = 0.5, subtitles: bool = True, language: str | None = None) -> dict[str, float]:
    st = settings.stream
    language = language or sentence_language(text, st.language)  # Chinese text gets a Mandarin voice
    sentences = [s for s in split_text(text.strip(), language=language) if s.strip()]
    if not sentences:
        raise NothingToSay("nothing to say: the text is empty")
    tts = build_voice(settings, language=language)
    try:
        renderer = build.build_renderer(settings, build.build_avatar(settings, override=avatar))
        clock = OutputClock(st.fps, st.sample_rate, renderer, [], [draw_subtitle] if subtitles else [])
        segments = []
        for sentence in sentences:
            try:
                pcm = tts.synthesize_blocking(sentence)
            except NothingSpeakable:  # an emoji-only sentence: nothing to hear, nothing to show
                continue
            poses = renderer.analyze(pcm, st.sample_rate)
            segments.append(Segment(Utterance(sentence, source="operator"), pcm, poses, clock.samples_per_frame))
        if not segments:
            raise NothingToSay("nothing to say: only emoji, links or punctuation")
        frames = sum(seg.total_frames for seg in segments)
        lead, tail = int(lead_s * st.fps), int(tail_s * st.fps)
        total = lead + frames + tail
        writer = MP4Writer(out, st.width, st.height, st.fps, st.sample_rate, fragmented=False)

        def write(tick: Tick) -> None:
            writer.write(tick.frame, tick.audio)

        try:
            clock.run_offline(lead, write)  # idle lead-in
            for seg in segments:
                clock.push(seg)
            clock.run_offline(frames + tail, write)
        finally:
            writer.close()
        log.info("rendered", extra={"file": str(out), "frames": total, "voice": tts.describe()})
        return {"frames": total, "seconds": total / st.fps, "speech_frames": frames}
    finally:
        tts.close()
