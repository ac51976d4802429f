"""Sinks: where the clock's ticks go (virtual camera, virtual microphone, recording, ...)."""

from streamer.sinks.base import Sink, SinkUnavailable, SinkWorker, Tick

__all__ = ["Sink", "SinkUnavailable", "SinkWorker", "Tick"]
