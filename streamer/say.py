"""``streamer say``: render one utterance offline to an MP4, through the same voice, renderer and clock
as the live stream (the clock runs unpaced). The quickest way to see the avatar speak."""

from __future__ import annotations

import logging
from pathlib import Path

from avatars.portrait import load_avatar
from avatars.renderers import create_renderer
from overlays import draw_subtitle
from streamer.app import build_tts
from streamer.clock import OutputClock
from streamer.config import Settings
from streamer.persona.sentences import split_text
from streamer.sinks.base import Tick
from streamer.sinks.recording import MP4Writer
from streamer.speech import Segment, Utterance

log = logging.getLogger(__name__)


def render_say(settings: Settings, text: str, out: Path, avatar: str | None = None, lead_s: float = 0.5,
               tail_s: float = 0.5, subtitles: bool = True) -> dict[str, float]:
    st = settings.stream
    tts = build_tts(settings)
    try:
        image = avatar if avatar is not None else (settings.avatar.image and str(settings.resolve(settings.avatar.image)))
        av = load_avatar(image, st.width, st.height, settings.avatar.mouth_x, settings.avatar.mouth_y,
                         settings.avatar.mouth_width)
        a = settings.avatar
        renderer = create_renderer(a.renderer, av, st.fps, a.wav2lip_checkpoint and str(settings.resolve(a.wav2lip_checkpoint)),
                                   a.device, a.precision, a.batch, a.backend)
        clock = OutputClock(st.fps, st.sample_rate, renderer, [], [draw_subtitle] if subtitles else [])
        utt = Utterance(text, 0, source="operator")
        frames = 0
        segments = []
        for sentence in split_text(text) or [text]:
            pcm = tts.synthesize_blocking(sentence)
            seg = Segment(utt, 1, sentence, pcm, renderer.analyze(pcm, st.sample_rate), clock.samples_per_frame)
            segments.append(seg)
            frames += seg.total_frames
        lead, tail = int(lead_s * st.fps), int(tail_s * st.fps)
        total = lead + frames + tail
        writer = MP4Writer(out, st.width, st.height, st.fps, st.sample_rate, fragmented=False)

        def write(tick: Tick) -> None:
            writer.write(tick.frame, tick.audio)

        try:
            clock.run_offline(lead, write)  # idle lead-in
            for seg in segments:
                clock.enqueue(seg)
            clock.run_offline(frames + tail, write)
        finally:
            writer.close()
        log.info("rendered", extra={"file": str(out), "frames": total, "voice": tts.describe()})
        return {"frames": total, "seconds": total / st.fps, "speech_frames": frames}
    finally:
        tts.close()
