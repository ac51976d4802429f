"""OBS Studio over obs-websocket v5: BRB scene on pause and back, the spoken line to a text source,
sources shown or hidden from the panel, reconnecting with backoff.

``ObsClient`` is a small client of the v5 protocol (JSON over a websocket): Hello (op 0) carries an
authentication challenge and salt; Identify (op 1) answers with
base64(sha256(base64(sha256(password + salt)) + challenge)); Identified (op 2) opens the session;
requests (op 6) are answered by request responses (op 7) matched by id. A wrong password closes the
socket with code 4009, which becomes one clear line, not a reconnect storm.

``ObsBridge`` is a client of the control API's status stream: it turns state changes (paused, the
line being spoken, requested source visibility) into OBS requests; it never touches the runtime.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import logging
import os
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any

import websockets
from websockets.typing import Subprotocol

log = logging.getLogger(__name__)

AUTH_FAILED = 4009


class ObsError(RuntimeError):
    pass


class ObsAuthError(ObsError):
    pass


class ObsRequestError(ObsError):
    """OBS answered a request with a failure (a scene or source that does not exist)."""


def auth_response(password: str, salt: str, challenge: str) -> str:
    secret = base64.b64encode(hashlib.sha256((password + salt).encode()).digest()).decode()
    return base64.b64encode(hashlib.sha256((secret + challenge).encode()).digest()).decode()


class ObsClient:
    def __init__(self, url: str, password: str, timeout_s: float = 5.0) -> None:
        self.url, self.password, self.timeout_s = url, password, timeout_s
        self.ws: Any = None
        self._ids = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self.ws = await asyncio.wait_for(websockets.connect(self.url, subprotocols=[Subprotocol("obswebsocket.json")],
                                                            max_size=2**22), self.timeout_s)
        try:
            hello = json.loads(await asyncio.wait_for(self.ws.recv(), self.timeout_s))
            if hello.get("op") != 0:
                raise ObsError(f"expected Hello from OBS, got op {hello.get('op')}")
            identify: dict[str, Any] = {"rpcVersion": 1, "eventSubscriptions": 0}
            challenge = hello["d"].get("authentication")
            if challenge:
                if not self.password:
                    raise ObsAuthError("OBS asks for a password: set it in the environment variable named by "
                                       "[control.obs] password_env (OBS_WEBSOCKET_PASSWORD)")
                identify["authentication"] = auth_response(self.password, challenge["salt"], challenge["challenge"])
            await self.ws.send(json.dumps({"op": 1, "d": identify}))
            reply = json.loads(await asyncio.wait_for(self.ws.recv(), self.timeout_s))
            if reply.get("op") != 2:
                raise ObsError(f"expected Identified from OBS, got op {reply.get('op')}")
        except websockets.ConnectionClosed as e:
            await self.aclose()
            if e.rcvd is not None and e.rcvd.code == AUTH_FAILED:
                raise ObsAuthError("OBS rejected the password (check OBS_WEBSOCKET_PASSWORD against OBS's "
                                   "Tools > WebSocket Server Settings)") from None
            raise ObsError(f"OBS closed the connection during the handshake ({e})") from None
        except BaseException:
            await self.aclose()
            raise
        self._reader = asyncio.create_task(self._read(), name="obs-reader")

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                if msg.get("op") == 7:
                    fut = self._waiting.pop(msg["d"].get("requestId", ""), None)
                    if fut is not None and not fut.done():
                        fut.set_result(msg["d"])
        except websockets.ConnectionClosed:
            pass
        finally:
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(ObsError("OBS connection lost"))
            self._waiting.clear()

    @property
    def closed(self) -> bool:
        return self._reader is None or self._reader.done()

    async def wait_closed(self) -> None:
        if self._reader is not None:
            await asyncio.shield(self._reader)

    async def request(self, kind: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        if self.closed:
            raise ObsError("OBS connection lost")
        rid = f"r{next(self._ids)}"
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        await self.ws.send(json.dumps({"op": 6, "d": {"requestType": kind, "requestId": rid,
                                                      "requestData": data or {}}}))
        reply = await asyncio.wait_for(fut, self.timeout_s)
        status = reply.get("requestStatus", {})
        if not status.get("result"):
            raise ObsRequestError(f"{kind}: {status.get('comment') or 'failed'} (code {status.get('code')})")
        return dict(reply.get("responseData") or {})

    async def aclose(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None


class ObsBridge:
    """Follows the status stream and keeps OBS in step with it."""

    def __init__(self, settings: Any, subscribe: Callable[[], AsyncGenerator[dict[str, Any], None]],
                 password: str | None = None, first_backoff_s: float = 1.0, max_backoff_s: float = 30.0) -> None:
        self.settings = settings
        self.subscribe = subscribe
        self.password = os.environ.get(settings.password_env, "") if password is None else password
        self.first_backoff_s, self.max_backoff_s = first_backoff_s, max_backoff_s
        self.state = "starting"
        self.error = ""
        self.connections = 0
        self._task: asyncio.Task[None] | None = None
        self._live_scene = ""
        self._applied: dict[Any, Any] = {}

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="obs-bridge")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        delay = self.first_backoff_s
        while True:
            client = ObsClient(self.settings.url, self.password)
            try:
                await client.connect()
                self.connections += 1
                self.state, self.error, delay = "connected", "", self.first_backoff_s
                log.info("OBS connected", extra={"url": self.settings.url})
                await self._follow(client)
                raise ObsError("OBS connection lost")
            except asyncio.CancelledError:
                await client.aclose()
                raise
            except (OSError, asyncio.TimeoutError, websockets.WebSocketException, ObsError) as e:
                await client.aclose()
                text = str(e) or type(e).__name__
                if text != self.error:  # one line per distinct problem, not one per retry
                    log.error("OBS unavailable; retrying with backoff", extra={"error": text, "retry_s": delay})
                self.state, self.error = "down", text
                self._applied.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s) if not isinstance(e, ObsAuthError) else self.max_backoff_s

    async def _follow(self, client: ObsClient) -> None:
        closed = asyncio.create_task(client.wait_closed())
        try:
            async with aclosing(self.subscribe()) as snapshots:
                while True:
                    nxt = asyncio.ensure_future(anext(snapshots))
                    done, _ = await asyncio.wait({nxt, closed}, return_when=asyncio.FIRST_COMPLETED)
                    if nxt not in done:
                        nxt.cancel()
                        await asyncio.gather(nxt, return_exceptions=True)
                        return
                    try:
                        await self.apply(client, nxt.result())
                    except ObsRequestError as e:  # a missing scene or source: say so, keep following
                        log.warning("OBS refused a request", extra={"error": str(e)})
        finally:
            closed.cancel()
            await asyncio.gather(closed, return_exceptions=True)

    async def apply(self, client: ObsClient, snap: dict[str, Any]) -> None:
        """Bring OBS in line with one status snapshot (only what changed since the last one)."""
        s = self.settings
        paused = bool(snap.get("paused"))
        if s.brb_scene and paused != self._applied.get("paused"):
            self._applied["paused"] = paused
            if paused:
                current = await client.request("GetCurrentProgramScene")
                scene = current.get("sceneName") or current.get("currentProgramSceneName", "")
                if scene != s.brb_scene:
                    self._live_scene = scene
                await client.request("SetCurrentProgramScene", {"sceneName": s.brb_scene})
            elif self._live_scene:
                await client.request("SetCurrentProgramScene", {"sceneName": self._live_scene})
        subtitle = snap.get("speaking") or ""
        if s.subtitle_source and subtitle != self._applied.get("subtitle"):
            self._applied["subtitle"] = subtitle
            await client.request("SetInputSettings", {"inputName": s.subtitle_source,
                                                      "inputSettings": {"text": subtitle}, "overlay": True})
        for source, want in (snap.get("obs_sources") or {}).items():
            if self._applied.get(("source", source)) == want:
                continue
            self._applied[("source", source)] = want
            scene = want.get("scene") or self._live_scene or (await client.request("GetCurrentProgramScene")).get(
                "sceneName", "")
            item = await client.request("GetSceneItemId", {"sceneName": scene, "sourceName": source})
            await client.request("SetSceneItemEnabled", {"sceneName": scene, "sceneItemId": item["sceneItemId"],
                                                         "sceneItemEnabled": bool(want["visible"])})
