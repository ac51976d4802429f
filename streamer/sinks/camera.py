"""The virtual camera sink (pyvirtualcam): OBS, Zoom, Teams or a browser pick it as a webcam.

On Linux it needs the v4l2loopback kernel module; on Windows and macOS, OBS's virtual camera. When
none exists at start the sink says so once, with how to get one, and the stream carries on without
it. A device that disappears while streaming (the module unloaded, OBS's camera stopped) is reopened
with backoff from the sink's own thread; the ticks in between are counted as skipped.
"""

from __future__ import annotations

import logging
from typing import Any

from streamer.sinks.base import Sink, SinkUnavailable, Tick
from streamer.sinks.reopen import Reopener

log = logging.getLogger(__name__)

HOW_TO_GET_ONE = (
    "no virtual camera found: on Linux run 'sudo apt-get install v4l2loopback-dkms && sudo modprobe "
    "v4l2loopback devices=1 exclusive_caps=1 card_label=streamer'; on Windows/macOS install OBS Studio and "
    "start its Virtual Camera once. The stream is still recorded (see [outputs.recording])."
)


class VirtualCameraSink(Sink):
    name = "camera"

    def __init__(self, width: int, height: int, fps: int, device: str | None = None, backend: str | None = None,
                 max_backoff_s: float = 30.0) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.device, self.backend = device, backend
        self.cam: Any = None
        self.reopener = Reopener(self.name, max_delay_s=max_backoff_s)

    def _camera(self) -> Any:
        try:
            import pyvirtualcam
        except ImportError:
            raise SinkUnavailable("pyvirtualcam is not installed: pip install 'streamer[vcam]'") from None
        return pyvirtualcam.Camera(self.width, self.height, self.fps, fmt=pyvirtualcam.PixelFormat.RGB,
                                   device=self.device, backend=self.backend)

    def open(self) -> None:
        try:
            self.cam = self._camera()
        except SinkUnavailable:
            raise
        except Exception as e:
            raise SinkUnavailable(f"{HOW_TO_GET_ONE} ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        self.reopener.up()
        log.info("virtual camera open", extra={"device": self.cam.device, "backend": self.cam.backend})

    def _reopen(self) -> None:
        self.cam = self._camera()
        log.info("virtual camera reopened", extra={"device": self.cam.device})

    def _send(self, tick: Tick) -> None:
        self.cam.send(tick.frame)

    def write(self, tick: Tick) -> None:
        self.reopener.deliver(lambda: self._send(tick), self._reopen, self.close)

    def close(self) -> None:
        if self.cam is not None:
            cam, self.cam = self.cam, None
            cam.close()

    def request_reopen(self) -> bool:
        self.reopener.request()
        return True

    def status(self) -> dict[str, object]:
        return {"device": self.cam.device if self.cam else None, **self.reopener.status()}
