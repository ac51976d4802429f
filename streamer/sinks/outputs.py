"""The operator-facing outputs built from ``[outputs.*]``: RTMP push, the stage page (WebRTC), a
sound device through PortAudio, and the panel's preview. ``build_sinks`` in the app appends these."""

from __future__ import annotations

from streamer.config import Settings
from streamer.sinks.base import Sink


def output_sinks(settings: Settings) -> list[Sink]:
    st, out = settings.stream, settings.outputs
    sinks: list[Sink] = []
    if out.rtmp.enabled:
        from streamer.sinks.rtmp import RtmpSink

        r = out.rtmp
        sinks.append(RtmpSink(r.url, st.width, st.height, st.fps, st.sample_rate, key_env=r.key_env, preset=r.preset,
                              video_kbps=r.video_kbps, audio_kbps=r.audio_kbps, max_backoff_s=r.max_backoff_s))
    if out.stage.enabled:
        from streamer.sinks.stage import StageHub, StageSink

        width = out.stage.width or st.width
        height = (st.height * width // st.width) // 2 * 2
        sinks.append(StageSink(StageHub(st.fps, st.sample_rate, width, height, out.stage.max_viewers)))
    if out.audio_device.enabled:
        from streamer.sinks.audio_device import AudioDeviceSink

        sinks.append(AudioDeviceSink(out.audio_device.device, st.sample_rate, out.audio_device.latency_ms))
    from streamer.sinks.stage import PreviewSink

    sinks.append(PreviewSink())
    return sinks
