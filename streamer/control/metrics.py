"""``GET /metrics``: the status snapshot in the Prometheus text exposition format (version 0.0.4).

Every value comes from the app's status snapshot; nothing here keeps its own counters, so the
figures an operator scrapes are the ones the panel shows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_CLASSES = {0: "operator", 1: "paid", 2: "question", 3: "danmaku", 4: "idle", -1: "held"}


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return repr(float(value)) if isinstance(value, float) else str(int(value or 0))


class _Family:
    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.name, self.kind, self.help = name, kind, help_text
        self.samples: list[tuple[dict[str, object], Any]] = []

    def add(self, value: Any, **labels: object) -> _Family:
        self.samples.append((labels, value))
        return self

    def lines(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} {self.kind}"
        for labels, value in self.samples:
            tag = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            yield f"{self.name}{{{tag}}} {_num(value)}" if tag else f"{self.name} {_num(value)}"


def render(status: dict[str, Any]) -> str:
    fams = [
        _Family("streamer_ticks_total", "counter", "Ticks (one video frame and its audio) emitted by the output clock.")
        .add(status.get("ticks", 0)),
        _Family("streamer_fps", "gauge", "Measured output frame rate.").add(float(status.get("fps", 0.0))),
        _Family("streamer_av_offset_seconds", "gauge", "Audio behind video at the outputs.")
        .add(float(status.get("av_offset_ms", status.get("mic_latency_ms", 0.0))) / 1000.0),
        _Family("streamer_uptime_seconds", "gauge", "Seconds since the stream started.").add(float(status.get("uptime_s", 0.0))),
        _Family("streamer_paused", "gauge", "1 while the host is paused.").add(bool(status.get("paused"))),
        _Family("streamer_muted", "gauge", "1 while the microphone outputs are muted.").add(bool(status.get("muted"))),
        _Family("streamer_queue_length", "gauge", "Messages waiting for the host.").add(status.get("queue", 0)),
    ]
    depth = _Family("streamer_queue_depth", "gauge", "Queued items per class.")
    counts = dict.fromkeys(_CLASSES.values(), 0)
    for item in status.get("queue_items", []):
        counts[_CLASSES.get(item.get("priority"), "other")] = counts.get(_CLASSES.get(item.get("priority"), "other"), 0) + 1
    for cls, n in counts.items():
        depth.add(n, **{"class": cls})
    fams.append(depth)
    fams.append(_Family("streamer_paid_pending", "gauge", "Paid messages waiting to be answered.")
                .add(status.get("paid_pending", 0)))
    fams.append(_Family("streamer_paid_failed", "gauge", "Paid messages that could not be answered.")
                .add(status.get("paid_failed", 0)))
    up, dropped, written, skipped = (
        _Family("streamer_sink_up", "gauge", "1 while the sink delivers."),
        _Family("streamer_sink_dropped_ticks_total", "counter", "Ticks a sink dropped because it was behind."),
        _Family("streamer_sink_written_ticks_total", "counter", "Ticks a sink delivered."),
        _Family("streamer_sink_skipped_ticks_total", "counter", "Ticks a sink skipped while its device was down."))
    total_dropped = 0
    for name, sink in status.get("sinks", {}).items():
        up.add(bool(sink.get("ok")) and sink.get("state", "live") == "live", sink=name)
        dropped.add(sink.get("dropped", 0), sink=name)
        written.add(sink.get("written", 0), sink=name)
        skipped.add(sink.get("skipped", 0), sink=name)
        total_dropped += int(sink.get("dropped", 0)) + int(sink.get("skipped", 0))
    fams += [up, dropped, written, skipped,
             _Family("streamer_dropped_ticks_total", "counter", "Ticks dropped or skipped by any sink.").add(total_dropped)]
    src = _Family("streamer_source_up", "gauge", "1 while a chat source is connected (listening for local ones).")
    for s in status.get("sources", []):
        live = s["state"] == "live" if "state" in s else s.get("connected") is not False and not s.get("error")
        src.add(live, source=s.get("name") or s.get("source", "?"))
    fams.append(src)
    errors = _Family("streamer_errors_total", "counter", "Errors by stage (llm, tts, ...) and kind.")
    for stage, kinds in (status.get("errors") or {}).items():
        for kind, n in (kinds or {}).items():
            errors.add(n, stage=stage, kind=kind)
    fams.append(errors)
    return "\n".join(line for fam in fams for line in fam.lines()) + "\n"
