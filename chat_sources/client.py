"""The reconnecting websocket client every platform source is built on.

A platform subclass supplies: ``bootstrap`` (HTTP work before connecting; ``fresh`` asks it to drop
cached tokens), ``on_open`` (auth/login), ``heartbeat_frame`` and a pure codec (``decode``). This
base owns what users of existing bots complain about:

- reconnect with exponential backoff and full jitter (the policy is an injected function);
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
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from chat_sources.base import ChatSource, CodecError, Decoded, EmitFn

log = logging.getLogger(__name__)

BROWSER_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/126.0.0.0 Safari/537.36")


class RiskControl(Exception):
    """The platform refused us as a suspected bot; the message says what to do. Retried slowly."""


class AuthFailed(Exception):
    """Credentials or token rejected; the bootstrap is re-run (fresh) before the next attempt."""


class Stalled(Exception):
    pass


def backoff(attempt: int, base: float = 1.0, cap: float = 60.0, rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter: 1, 2, 4 ... up to ``cap`` seconds, each scaled by 0.5..1."""
    return min(cap, base * (2 ** min(attempt, 16))) * (0.5 + 0.5 * rng())


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
        self.room = room
        self.reconnect = reconnect
        if heartbeat_s is not None:
            self.heartbeat_s = heartbeat_s
        self._dedupe = _Dedupe(dedupe_size)
        self._logged_kinds: set[str] = set()
        self.connects = 0
        self.stalls = 0
        self.skipped = 0
        self.duplicates = 0
        self.last_error = ""
        self.connected = asyncio.Event()

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

    # ---------------------------------------------------------------- the loop
    async def run(self, emit: EmitFn) -> None:
        attempt = 0
        fresh = False
        while True:
            delay_floor = 0.0
            try:
                target = await self.bootstrap(fresh)
                fresh = False
                if await self._session(target, emit):
                    attempt = 0
            except asyncio.CancelledError:
                raise
            except AuthFailed as e:
                fresh = True
                self._failed("authentication failed; re-running the bootstrap", e)
            except RiskControl as e:
                fresh = True
                delay_floor = self.risk_control_delay_s
                self._failed("risk control", e)
            except Stalled as e:
                self.stalls += 1
                self._failed("server went silent; reconnecting", e)
            except InvalidStatus as e:
                headers = {k.lower(): v for k, v in e.response.headers.raw_items()}
                err = self.handshake_rejected(e.response.status_code, headers)
                if isinstance(err, RiskControl):
                    delay_floor = self.risk_control_delay_s
                    fresh = True
                self._failed("handshake rejected", err)
            except (OSError, ConnectionClosed, InvalidHandshake, InvalidURI, asyncio.TimeoutError) as e:
                self._failed("connection lost", e)
            except Exception as e:  # a bug in a platform hook must not kill the source
                log.exception("chat source error", extra={"source": self.describe()})
                self.last_error = str(e)
            finally:
                self.connected.clear()
            delay = max(delay_floor, self.reconnect(attempt))
            attempt += 1
            log.info("reconnecting", extra={"source": self.describe(), "in_s": round(delay, 2), "attempt": attempt})
            await asyncio.sleep(delay)

    def _failed(self, what: str, err: Exception) -> None:
        self.last_error = f"{what}: {err}"
        log.warning(what, extra={"source": self.describe(), "error": str(err)})

    async def _session(self, target: Target, emit: EmitFn) -> bool:
        """One connection. Returns True once it delivered events (so the backoff resets)."""
        delivered = False
        async with connect(target.url, additional_headers=target.headers, max_size=self.max_size,
                           open_timeout=10, ping_interval=20, ping_timeout=20, close_timeout=2,
                           user_agent_header=target.headers.get("User-Agent", BROWSER_UA)) as ws:
            await self.on_open(ws)
            self.connects += 1
            self.connected.set()
            log.info("chat connected", extra={"source": self.describe()})
            hb = asyncio.create_task(self._heartbeats(ws))
            try:
                while True:
                    try:
                        data = await asyncio.wait_for(ws.recv(), timeout=self.stall_s)
                    except asyncio.TimeoutError:
                        raise Stalled(f"nothing received for {self.stall_s:.0f} s") from None
                    decoded = self.decode_safely(data)
                    for reply in decoded.replies:
                        await ws.send(reply)
                    for event in decoded.events:
                        if self._dedupe.fresh(event.msg_id):
                            emit(event)
                            delivered = True
                        else:
                            self.duplicates += 1
                    if "auth_failed" in decoded.signals:
                        raise AuthFailed("the server rejected our credentials")
                    if "reconnect" in decoded.signals:
                        log.info("server asked us to reconnect", extra={"source": self.describe()})
                        return delivered
            finally:
                hb.cancel()
                await asyncio.gather(hb, return_exceptions=True)

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
