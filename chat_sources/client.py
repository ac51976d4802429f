"""The websocket client every platform source is built on.

A platform subclass supplies: ``bootstrap`` (HTTP work before connecting; ``fresh`` asks it to drop
cached tokens), ``on_open`` (auth/login), ``heartbeat_frame`` and a pure codec (``decode``). This
base owns one connection (``session``) and how its failures read; ``ChatSource.run`` owns the one
reconnect loop (exponential backoff with full jitter, the policy an injected function). It handles
what users of existing bots complain about:

- a connection that never opened says which host could not be resolved, refused or timed out, not
  "connection lost"; after a few failures it suggests checking the network or proxy;
- a watchdog: a server that stops talking without closing is noticed within two heartbeat
  intervals (every platform answers our heartbeats, so silence means a dead link);
- risk-control answers (Bilibili -352/412, Douyin's HTTP 200 instead of 101) are reported with what
  to do and retried slowly, never hammered;
- a malformed, truncated or unknown frame is skipped with one log line per kind, never a crash;
- events are de-duplicated by the platform's message id across reconnects.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from chat_sources.base import (
    NETWORK_HINT,
    ChatSource,
    CodecError,
    Decoded,
    EmitFn,
    Failure,
    backoff,
    cancel_requested,
)

__all__ = ["BROWSER_UA", "AuthFailed", "RiskControl", "Stalled", "Target", "WebsocketClientSource", "backoff"]

log = logging.getLogger(__name__)

BROWSER_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/126.0.0.0 Safari/537.36")
OPEN_TIMEOUT_S = 10.0


class RiskControl(Exception):
    """The platform refused us as a suspected bot; the message says what to do. Retried slowly."""


class AuthFailed(Exception):
    """Credentials or token rejected; the bootstrap is re-run (fresh) before the next attempt."""


class Stalled(Exception):
    pass


@dataclass
class Target:
    url: str
    headers: dict[str, str] = field(default_factory=dict)


class _Dedupe:
    def __init__(self, size: int) -> None:
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.size = size

    def fresh(self, key: str) -> bool:
        if not key:
            return True
        if key in self._seen:
            self._seen.move_to_end(key)
            return False
        self._seen[key] = None
        if len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return True


class WebsocketClientSource(ChatSource):
    platform = "platform"
    heartbeat_s = 30.0
    max_size: int | None = 1 << 20
    risk_control_delay_s = 120.0

    def __init__(self, room: str, *, reconnect: Callable[[int], float] = backoff, heartbeat_s: float | None = None,
                 dedupe_size: int = 20000) -> None:
        super().__init__(reconnect=reconnect)
        self.room = room
        if heartbeat_s is not None:
            self.heartbeat_s = heartbeat_s
        self._dedupe = _Dedupe(dedupe_size)
        self._logged_kinds: set[str] = set()
        self._fresh = False
        self._url = ""
        self._opened = False
        self.connects = 0
        self.stalls = 0
        self.skipped = 0
        self.duplicates = 0

    @property
    def connected(self) -> asyncio.Event:
        return self.live

    @property
    def stall_s(self) -> float:
        return 2.0 * self.heartbeat_s

    def describe(self) -> str:
        return f"{self.platform} {self.room}"

    # ---------------------------------------------------------------- platform hooks
    async def bootstrap(self, fresh: bool) -> Target:  # pragma: no cover - interface
        raise NotImplementedError

    async def on_open(self, ws: ClientConnection) -> None:
        """Log in / authenticate. Raise AuthFailed when refused."""

    def heartbeat_frame(self) -> bytes | str | None:
        return None

    def decode(self, data: bytes | str) -> Decoded:  # pragma: no cover - interface
        raise NotImplementedError

    def handshake_rejected(self, status: int, headers: dict[str, str]) -> Exception:
        return RiskControl(f"{self.platform} refused the websocket handshake with HTTP {status}")

    # ---------------------------------------------------------------- one connection
    async def session(self, emit: EmitFn) -> bool:
        self._url, self._opened = "", False
        target = await self.bootstrap(self._fresh)
        self._fresh = False
        self._url = target.url
        async with connect(target.url, additional_headers=target.headers, max_size=self.max_size,
                           open_timeout=OPEN_TIMEOUT_S, ping_interval=20, ping_timeout=20, close_timeout=2,
                           user_agent_header=target.headers.get("User-Agent", BROWSER_UA)) as ws:
            self._opened = True
            await self.on_open(ws)
            self.connects += 1
            self.went_live()
            log.info("chat connected", extra={"source": self.describe(), "host": self._host()})
            hb = asyncio.create_task(self._heartbeats(ws))
            try:
                await self._receive(ws, emit)
            finally:
                hb.cancel()
                await asyncio.gather(hb, return_exceptions=True)
        return False

    async def _receive(self, ws: ClientConnection, emit: EmitFn) -> None:
        while True:
            try:
                data = await asyncio.wait_for(ws.recv(), timeout=self.stall_s)
            except asyncio.TimeoutError:
                if cancel_requested():
                    raise asyncio.CancelledError from None
                raise Stalled(f"nothing received from {self._host()} for {self.stall_s:.0f} s") from None
            decoded = self.decode_safely(data)
            for reply in decoded.replies:
                await ws.send(reply)
            for event in decoded.events:
                if self._dedupe.fresh(event.msg_id):
                    emit(event)
                else:
                    self.duplicates += 1
            if "auth_failed" in decoded.signals:
                raise AuthFailed("the server rejected our credentials")
            if "reconnect" in decoded.signals:
                log.info("server asked us to reconnect", extra={"source": self.describe()})
                return

    async def _heartbeats(self, ws: ClientConnection) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            frame = self.heartbeat_frame()
            if frame is not None:
                await ws.send(frame)

    def decode_safely(self, data: bytes | str) -> Decoded:
        try:
            return self.decode(data)
        except CodecError as e:
            self.skipped += 1
            if e.kind not in self._logged_kinds:
                self._logged_kinds.add(e.kind)
                log.warning("skipping undecodable frame (logged once per kind)",
                            extra={"source": self.describe(), "kind": e.kind, "error": str(e)})
            return Decoded()

    # ---------------------------------------------------------------- failures, in words
    def _host(self) -> str:
        """host:port of the websocket we dial (the query string may hold tokens: never shown)."""
        parts = urllib.parse.urlsplit(self._url)
        if not parts.hostname:
            return self._url.split("?", 1)[0] or "?"
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        return f"{parts.hostname}:{port}"

    def failure(self, error: Exception) -> Failure:
        if isinstance(error, AuthFailed):
            self._fresh = True
            return Failure("authentication failed", f"authentication failed: {error}; re-running the bootstrap")
        if isinstance(error, RiskControl):
            self._fresh = True
            return Failure("risk control", str(error), retry_floor_s=self.risk_control_delay_s)
        if isinstance(error, Stalled):
            self.stalls += 1
            return Failure("server went silent", f"{error}; reconnecting", hint=NETWORK_HINT)
        if isinstance(error, InvalidStatus):
            headers = {k.lower(): v for k, v in error.response.headers.raw_items()}
            err = self.handshake_rejected(error.response.status_code, headers)
            risky = isinstance(err, RiskControl)
            self._fresh = self._fresh or risky
            return Failure("handshake rejected", str(err), retry_floor_s=self.risk_control_delay_s if risky else 0.0)
        if isinstance(error, InvalidURI):
            return Failure("bad websocket URL", f"not a websocket URL: {error.uri}", needs_operator=True)
        if not self._url:  # the HTTP bootstrap failed before we had a websocket to dial
            return self._bootstrap_failure(error)
        if not self._opened:
            return self._connect_failure(error)
        if isinstance(error, (OSError, ConnectionClosed, InvalidHandshake, asyncio.TimeoutError)):
            return Failure("connection lost", f"connection to {self._host()} lost: {error}", hint=NETWORK_HINT)
        return super().failure(error)

    def _connect_failure(self, error: Exception) -> Failure:
        host = self._host()
        if isinstance(error, socket.gaierror):
            name = host.rsplit(":", 1)[0]
            reason = f"cannot resolve host {name} ({error.strerror}): no network, or a DNS or proxy problem?"
        elif isinstance(error, ConnectionRefusedError):
            reason = f"{host} refused the connection (nothing is listening there)"
        elif isinstance(error, (TimeoutError, asyncio.TimeoutError)):
            reason = f"{host} did not answer within {OPEN_TIMEOUT_S:.0f} s"
        elif isinstance(error, OSError):
            reason = f"cannot reach {host}: {error.strerror or error}"
        elif isinstance(error, (InvalidHandshake, ConnectionClosed)):
            reason = f"{host} did not complete the websocket handshake: {error}"
        else:
            return super().failure(error)
        return Failure("cannot connect", reason, hint=NETWORK_HINT)

    def _bootstrap_failure(self, error: Exception) -> Failure:
        host = getattr(error, "host", None)  # aiohttp's ClientConnectorError names the host it dialled
        where = f"{host}:{getattr(error, 'port', '')}" if host else f"the {self.platform} web API"
        if isinstance(error, socket.gaierror) or isinstance(getattr(error, "os_error", None), socket.gaierror):
            reason = f"cannot resolve host {host or where}: no network, or a DNS or proxy problem?"
        elif isinstance(error, (TimeoutError, asyncio.TimeoutError)):
            reason = f"{where} did not answer in time"
        elif isinstance(error, OSError) and error.errno is None:  # an answer we could not use (HTTP 500, no room)
            return Failure("bootstrap failed", f"{self.platform} web API: {error}", hint=NETWORK_HINT)
        elif isinstance(error, OSError):
            reason = f"cannot reach {where}: {error.strerror or error}"
        else:
            return super().failure(error)
        return Failure("cannot connect", reason, hint=NETWORK_HINT)
