"""The chat source interface, its one supervision loop, and the decode result every codec returns.

A source is started by its owner with ``await source.run(emit)`` (a task the owner cancels) and
calls ``emit(event)`` for every ChatEvent. Nothing starts in a constructor.

``run`` is the only restart loop for every kind of source (platform clients, the local websocket
server, replay files): a subclass implements one attempt, ``session(emit)``, and ``run`` retries it
with the injected backoff policy, forever, because a 24/7 host must recover on its own once the
network, the port or the file is back. What the loop learns is published for the operator:

- ``state``: ``starting`` (never live yet), ``live``, ``reconnecting`` (was live, lost it),
  ``failed`` (needs the operator: a port in use, a missing file, or ``failed_after`` attempts in a
  row without going live; still retried, slowly) and ``finished`` (a replay that does not loop);
- ``last_error``: the last failure in words a user understands (which host could not be resolved,
  which port is taken, which file is missing), with a hint once failures repeat.

Codecs are pure: bytes (or text) in, ``Decoded`` out: the events, the frames to send back (an ACK,
a PONG) and control signals for the client (reconnect now, authentication failed, ...).
"""

from __future__ import annotations

import asyncio
import enum
import errno
import logging
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from streamer.events import ChatEvent

log = logging.getLogger(__name__)


def cancel_requested() -> bool:
    """The running task was asked to stop. On Python 3.11 ``asyncio.wait_for`` can turn a cancel that meets
    its timeout into ``TimeoutError``; a loop that retries on errors checks this so a stop is never lost."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)  # Python 3.11+
    return bool(cancelling is not None and cancelling())

EmitFn = Callable[[ChatEvent], None]

NETWORK_HINT = "check the network connection, a proxy (HTTPS_PROXY) or a firewall"


def backoff(attempt: int, base: float = 1.0, cap: float = 60.0, rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter: 1, 2, 4 ... up to ``cap`` seconds, each scaled by 0.5..1."""
    return min(cap, base * (2 ** min(attempt, 16))) * (0.5 + 0.5 * rng())


class CodecError(ValueError):
    """A frame that cannot be decoded; the client skips it with one log line per kind."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass
class Decoded:
    events: list[ChatEvent] = field(default_factory=list)
    replies: list[bytes | str] = field(default_factory=list)
    signals: list[str] = field(default_factory=list)
    """auth_ok, auth_failed, reconnect, heartbeat_ack"""

    def extend(self, other: Decoded) -> None:
        self.events.extend(other.events)
        self.replies.extend(other.replies)
        self.signals.extend(other.signals)


class SourceState(str, enum.Enum):
    STARTING = "starting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    FAILED = "failed"
    FINISHED = "finished"


@dataclass(frozen=True)
class Failure:
    """One failed attempt, classified: ``what`` is the static log message, ``reason`` the sentence a
    user reads (it names the host, port or file), ``hint`` is added once failures repeat."""

    what: str
    reason: str
    retry_floor_s: float = 0.0
    needs_operator: bool = False
    """Nothing changes until the operator acts (a port in use, a missing file): ``failed`` at once."""
    hint: str = ""
    unexpected: bool = False
    """A bug rather than a condition: logged with its traceback."""


class SourceError(Exception):
    """A condition a source reports in words; ``needs_operator`` when retrying alone cannot fix it."""

    def __init__(self, what: str, reason: str, *, needs_operator: bool = False) -> None:
        super().__init__(reason)
        self.what, self.reason, self.needs_operator = what, reason, needs_operator


class ChatSource:
    name = "source"
    failed_after = 3
    """Failed attempts in a row (without going live) after which the state is ``failed``."""

    def __init__(self, *, reconnect: Callable[[int], float] = backoff) -> None:
        self.reconnect = reconnect
        self.state = SourceState.STARTING
        self.last_error = ""
        self.failures = 0
        """Failed attempts since the source was last live."""
        self.live = asyncio.Event()

    def describe(self) -> str:
        return self.name

    # ---------------------------------------------------------------- what a kind of source supplies
    async def session(self, emit: EmitFn) -> bool:  # pragma: no cover - interface
        """One attempt: connect (or bind, or open the file), call ``went_live()``, deliver events.
        Raise on failure; return True when the source has nothing more to give (a replay that does
        not loop), False to be started again."""
        raise NotImplementedError

    def failure(self, error: Exception) -> Failure:
        """Classify an attempt's exception; subclasses add their own and fall back to this."""
        if isinstance(error, SourceError):
            return Failure(error.what, error.reason, needs_operator=error.needs_operator)
        if isinstance(error, socket.gaierror):
            return Failure("cannot resolve host", f"a host name could not be resolved: {error.strerror}",
                           hint=NETWORK_HINT)
        if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
            return Failure("port in use", f"the port is in use by another program: {error.strerror}",
                           needs_operator=True)
        if isinstance(error, (OSError, asyncio.TimeoutError)):
            return Failure("connection failed", f"{type(error).__name__}: {error}", hint=NETWORK_HINT)
        return Failure("chat source error", f"{type(error).__name__}: {error}", unexpected=True)

    # ---------------------------------------------------------------- the one loop
    def went_live(self) -> None:
        """Called by ``session`` once it is connected (listening, reading): the attempt succeeded."""
        self.state = SourceState.LIVE
        self.failures = 0
        self.live.set()

    async def run(self, emit: EmitFn) -> None:
        """Connect, read, reconnect, until cancelled (a stop: honoured promptly, also mid-timeout)."""
        attempt = 0
        while True:
            delivered = False

            def counted(event: ChatEvent) -> None:
                nonlocal delivered
                delivered = True
                emit(event)

            failure: Failure | None = None
            error: Exception | None = None
            try:
                if await self.session(counted):
                    self.state = SourceState.FINISHED
                    return
            except asyncio.CancelledError:
                raise
            except Exception as e:  # every failure is classified and retried: the host runs 24/7
                if cancel_requested():  # a stop that met a timeout (wait_for turns it into TimeoutError)
                    raise asyncio.CancelledError from e
                failure, error = self.failure(e), e
            finally:
                self.live.clear()
            if delivered:
                attempt = 0
            delay = self.reconnect(attempt)
            attempt += 1
            if failure is None:
                self.state = SourceState.RECONNECTING
                log.info("reconnecting", extra={"source": self.describe(), "in_s": round(delay, 2)})
            else:
                delay = max(delay, failure.retry_floor_s)
                self._record(failure, delay, error)
            await asyncio.sleep(delay)

    def _record(self, failure: Failure, delay: float, error: Exception | None) -> None:
        was_live = self.state in (SourceState.LIVE, SourceState.RECONNECTING)
        self.failures += 1
        repeated = self.failures >= self.failed_after
        if failure.needs_operator or repeated:
            self.state = SourceState.FAILED
        elif was_live:
            self.state = SourceState.RECONNECTING
        reason = failure.reason
        if repeated and failure.hint:
            reason += f" ({self.failures} attempts failed: {failure.hint})"
        self.last_error = reason
        extra = {"source": self.describe(), "error": reason, "retry_in_s": round(delay, 2), "attempt": self.failures}
        log.warning(failure.what, extra=extra, exc_info=error if failure.unexpected else None)
