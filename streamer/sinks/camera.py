"""The virtual camera sink (pyvirtualcam): OBS, Zoom, Teams or a browser pick it as a webcam.

On Linux it needs the v4l2loopback kernel module; on Windows and macOS, OBS's virtual camera. When
none exists the sink says so once, with how to get one, and the stream carries on without it.
"""

from __future__ import annotations

import logging
from typing import Any

from streamer.sinks.base import Sink, SinkUnavailable, Tick

log = logging.getLogger(__name__)

HOW_TO_GET_ONE = (
    "no virtual camera found: on Linux run 'sudo apt-get install v4l2loopback-dkms && sudo modprobe "
    "v4l2loopback devices=1 exclusive_caps=1 card_label=streamer'; on Windows/macOS install OBS Studio and "
    "start its Virtual Camera once. The stream is still recorded (see [outputs.recording])."
)


class VirtualCameraSink(Sink):
    name = "camera"

    def __init__(self, width: int, height: int, fps: int, device: str | None = None, backend: str | None = None) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.device, self.backend = device, backend
        self.cam: Any = None

    def open(self) -> None:
        try:
            import pyvirtualcam
        except ImportError:
            raise SinkUnavailable("pyvirtualcam is not installed: pip install 'streamer[vcam]'") from None
        try:
            self.cam = pyvirtualcam.Camera(self.width, self.height, self.fps, fmt=pyvirtualcam.PixelFormat.RGB,
                                           device=self.device, backend=self.backend)
        except Exception as e:
            raise SinkUnavailable(f"{HOW_TO_GET_ONE} ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        log.info("virtual camera open", extra={"device": self.cam.device, "backend": self.cam.backend})

    def write(self, tick: Tick) -> None:
        self.cam.send(tick.frame)

    def close(self) -> None:
        if self.cam is not None:
            self.cam.close()
            self.cam = None

    def status(self) -> dict[str, object]:
        return {"device": self.cam.device if self.cam else None}
