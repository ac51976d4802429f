"""Headless Chromium driven over the Chrome DevTools Protocol (no WebDriver, no extra package).

``Browser`` starts Debian's chromium with a fresh profile and a DevTools port chosen by Chromium
itself (read back from ``DevToolsActivePort``), attaches to its page and offers what the panel tests
need: navigate, evaluate JavaScript, wait for a condition, press a key like a user.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import websockets

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required",
         "--disable-features=WebRtcHideLocalIpsWithMdns", "--mute-audio", "--remote-debugging-port=0",
         "--remote-allow-origins=*"]
KEYS = {"Escape": ("Escape", 27), "Enter": ("Enter", 13)}


class Browser:
    def __init__(self) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="operator-chromium-"))
        self.proc: asyncio.subprocess.Process | None = None
        self.ws: Any = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.console: list[str] = []

    async def __aenter__(self) -> Browser:
        assert CHROMIUM, "chromium is not installed"
        self.proc = await asyncio.create_subprocess_exec(CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}",
                                                         "about:blank", stdout=subprocess.DEVNULL,
                                                         stderr=subprocess.DEVNULL)
        port_file = self.profile / "DevToolsActivePort"
        for _ in range(300):
            if port_file.is_file() and port_file.read_text().strip():
                break
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                pages = [t for t in await (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
                         if t["type"] == "page"]
                if pages:
                    break
                await asyncio.sleep(0.1)
        self.ws = await websockets.connect(pages[0]["webSocketDebuggerUrl"], max_size=2**24)
        self._reader = asyncio.create_task(self._read())
        await self.send("Page.enable")
        await self.send("Runtime.enable")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    async def _read(self) -> None:
        async for raw in self.ws:
            msg = json.loads(raw)
            if "id" in msg and msg["id"] in self._waiting:
                self._waiting.pop(msg["id"]).set_result(msg)
            elif msg.get("method") == "Runtime.consoleAPICalled":
                self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in msg["params"]["args"]))
            elif msg.get("method") == "Runtime.exceptionThrown":
                self.console.append("exception: " + json.dumps(msg["params"]["exceptionDetails"])[:500])

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        mid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[mid] = fut
        await self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        msg = await asyncio.wait_for(fut, 30)
        if "error" in msg:
            raise RuntimeError(f"{method}: {msg['error']}")
        return dict(msg.get("result", {}))

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)
        await self.wait("document.readyState === 'complete' && location.href !== 'about:blank'")

    async def js(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait(self, expression: str, timeout: float = 30.0) -> Any:
        """Wait until ``expression`` is truthy in the page; its value."""
        end = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                value = await self.js(expression)
            except RuntimeError:
                value = None
            if value:
                return value
            if asyncio.get_running_loop().time() > end:
                raise AssertionError(f"timed out waiting for {expression!r}; console: {self.console[-5:]}")
            await asyncio.sleep(0.05)

    async def press(self, key: str) -> None:
        """A real key press (keydown + keyup) delivered to the focused page."""
        await self.key("keyDown", key)
        await self.key("keyUp", key)

    async def key(self, kind: str, key: str) -> None:
        """One key event ("keyDown" or "keyUp"): a key held down between the two."""
        code, vk = KEYS[key] if key in KEYS else (f"Key{key.upper()}", ord(key.upper()))
        await self.send("Input.dispatchKeyEvent", type=kind, key=key, code=code, windowsVirtualKeyCode=vk,
                        text=key if len(key) == 1 and kind == "keyDown" else "")
