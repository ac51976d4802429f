"""Global hotkeys: interrupt, pause/resume and "ban the author of this line" while the panel is not
focused (OBS or the platform's dashboard in front). pynput listens on X11, Windows and macOS.

A client of the control API like the panel: a key press becomes an HTTP command to the API with the
token; nothing here touches the runtime. Off by default (``[control.hotkeys] enabled = true``): a
global key grab surprises people, and on Wayland it cannot work (use the panel's shortcuts).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

HOW_TO_ENABLE = ("set [control.hotkeys] enabled = true (keys: interrupt, pause, ban_current, e.g. "
                 "\"<ctrl>+<alt>+i\"); needs pip install 'streamer[hotkeys]' and X11, Windows or macOS")


def _keyboard() -> Any:
    """pynput's keyboard module; RuntimeError saying why it cannot listen here."""
    try:
        from pynput import keyboard
    except ImportError as e:
        if "pynput" in str(e) and "No module" in str(e):
            raise RuntimeError("pynput is not installed: pip install 'streamer[hotkeys]'") from None
        raise RuntimeError(f"no keyboard backend here ({e}); global hotkeys need X11 (DISPLAY), Windows or "
                           "macOS: use the panel's shortcuts instead") from None
    except Exception as e:  # pynput probes the display at import
        raise RuntimeError(f"no keyboard backend here ({e}); global hotkeys need X11 (DISPLAY), Windows or "
                           "macOS: use the panel's shortcuts instead") from None
    return keyboard


class GlobalHotkeys:
    def __init__(self, base_url: str, token: str, settings: Any) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.bindings = {settings.interrupt: "interrupt", settings.pause: "pause", settings.ban_current: "ban_current"}
        self.fired: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: Any = None
        self._session: aiohttp.ClientSession | None = None
        self._pending: set[concurrent.futures.Future[None]] = set()

    def start(self) -> None:
        """Start listening (call on the event loop). RuntimeError when this machine cannot."""
        keyboard = _keyboard()
        handlers = {}
        for keys, command in self.bindings.items():
            try:
                keyboard.HotKey.parse(keys)
            except ValueError as e:
                raise RuntimeError(f"[control.hotkeys] {command} = {keys!r} is not a key combination: {e}") from None
            handlers[keys] = self._handler(command)
        self._loop = asyncio.get_running_loop()
        self._session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {self.token}"})
        self._listener = keyboard.GlobalHotKeys(handlers)
        self._listener.start()
        log.info("global hotkeys on", extra={"keys": {v: k for k, v in self.bindings.items()}})

    def _handler(self, command: str) -> Any:
        def fire() -> None:  # pynput's thread
            loop = self._loop
            if loop is None or loop.is_closed():
                return
            fut = asyncio.run_coroutine_threadsafe(self._send(command), loop)
            self._pending.add(fut)
            fut.add_done_callback(self._pending.discard)

        return fire

    async def _send(self, command: str) -> None:
        assert self._session is not None
        self.fired.append(command)
        path = command
        try:
            if command == "pause":
                async with self._session.get(f"{self.base_url}/api/status") as r:
                    path = "resume" if (await r.json()).get("paused") else "pause"
            async with self._session.post(f"{self.base_url}/api/{path}") as r:
                if r.status >= 400:
                    log.warning("hotkey command refused", extra={"command": path, "status": r.status,
                                                                 "error": (await r.json()).get("error")})
        except aiohttp.ClientError as e:
            log.warning("hotkey command failed", extra={"command": path, "error": str(e)})

    async def aclose(self) -> None:
        if self._listener is not None:
            listener, self._listener = self._listener, None
            listener.stop()
            _wake_x11_listener(listener)
            await asyncio.to_thread(listener.join, 2.0)  # its X connection closes before the display may go
        for fut in list(self._pending):
            fut.cancel()
        await asyncio.sleep(0)
        if self._session is not None:
            await self._session.close()
            self._session = None


def _wake_x11_listener(listener: Any) -> None:
    """pynput's X11 listener stops only at the next key event: it disables its XRecord context on the
    connection that is blocked reading it. Disabling it on the control connection wakes it now."""
    control, context = getattr(listener, "_display_stop", None), getattr(listener, "_context", None)
    if control is None or context is None:
        return
    try:
        control.record_disable_context(context)
        control.flush()
    except Exception as e:  # the X server is gone already: nothing to wake
        log.debug("could not wake the X11 key listener", extra={"error": str(e)})


def doctor_line(settings: Any) -> tuple[bool, str, str]:
    """(ok, detail, fix) for ``streamer doctor``."""
    hk = settings.control.hotkeys
    if not hk.enabled:
        return True, f"off (the panel's shortcuts work while it is focused); to enable: {HOW_TO_ENABLE}", ""
    try:
        _keyboard()
    except RuntimeError as e:
        return False, str(e), HOW_TO_ENABLE
    return True, f"on: interrupt {hk.interrupt}, pause {hk.pause}, ban author {hk.ban_current}", ""
