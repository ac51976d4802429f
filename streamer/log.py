"""Logging setup: static messages, with structured fields (event, utterance, turn, tick...) appended,
and no secret ever written out.

Libraries we do not control log credentials: the HTTP client under the OpenAI SDK logs every request's
full URL at INFO (``user:password@`` and ``?api-key=`` included). ``RedactSecrets``, installed on the
handler by ``setup_logging``, masks in every record that reaches it (message, arguments, extra fields,
traceback text):

- the userinfo of any URL (``https://user:pass@host`` -> ``https://***@host``);
- query parameters that carry credentials (key, api-key, token, access_token, sig, password, ...);
- the stream key of ``rtmp://``/``rtmps://`` URLs (their last path segment);
- ``Bearer`` tokens and OpenAI-style ``sk-...`` keys;
- the values of the secret environment variables (``SECRET_ENV`` and any ``*_KEY``, ``*_TOKEN``,
  ``*_SECRET``, ``*_PASSWORD``, ``*_COOKIE``), the parts of cookie strings, and secrets registered at
  run time with ``add_secret`` (the generated control token).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from typing import TextIO

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}

SECRET_ENV = ("OPENAI_API_KEY", "BILIBILI_COOKIE", "DOUYIN_COOKIE", "TWITCH_TOKEN", "STREAMER_CONTROL_TOKEN",
              "OBS_PASSWORD", "RTMP_STREAM_KEY", "STREAMER_RTMP_KEY", "STREAM_KEY")
"""Environment variables whose values are secrets (besides any name ending as in ``_SECRET_NAME``)."""
_SECRET_NAME = re.compile(r"(^|_)(KEY|TOKEN|SECRET|PASSWORD|PASSWD|COOKIE|CREDENTIALS?)$|STREAM_KEY", re.I)
MIN_SECRET_CHARS = 6
"""Shorter values are not masked wherever they appear (that would mangle ordinary words)."""
MASK = "***"

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#'\"]+@")
_QUERY_SECRET = re.compile(
    r"(?i)([?&;](?:api[-_]?key|key|token|access[-_]?token|refresh[-_]?token|id[-_]?token|auth|authorization|"
    r"sig|signature|x-amz-signature|x-amz-credential|password|passwd|pwd|passphrase|secret|client[-_]?secret|"
    r"sessdata|streamid)=)[^&#\s'\"]*")
_STREAM_KEY = re.compile(r"(?i)\b(rtmps?://[^/\s'\"]+/(?:[^\s'\"]*/)?)[^/\s?'\"]+")
_BEARER = re.compile(r"\b([Bb]earer\s+)[A-Za-z0-9._~+/=-]{6,}")
_OPENAI_KEY = re.compile(r"\bsk-[A-Za-z0-9_-]{16,}")


def _secret_values(environ: Mapping[str, str]) -> set[str]:
    values: set[str] = set()
    for name, value in environ.items():
        if name in SECRET_ENV or _SECRET_NAME.search(name):
            values.update(_parts(value))
    return values


def _parts(value: str) -> set[str]:
    """A secret and, for a cookie string, each cookie's value."""
    value = value.strip()
    out = {value}
    if "=" in value:
        out.update(part.split("=", 1)[1].strip() for part in value.split(";") if "=" in part)
    return {v for v in out if len(v) >= MIN_SECRET_CHARS}


class RedactSecrets(logging.Filter):
    """Mask credentials in every record; never drops a record."""

    def __init__(self, environ: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(_secret_values(os.environ if environ is None else environ))
        self.add(extra)

    def add(self, values: Iterable[str]) -> None:
        self._secrets.update(v for value in values for v in _parts(value))
        longest_first = sorted(self._secrets, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, longest_first))) if longest_first else None

    def redact(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        text = _USERINFO.sub(rf"\1{MASK}@", text)
        text = _QUERY_SECRET.sub(rf"\1{MASK}", text)
        text = _STREAM_KEY.sub(rf"\1{MASK}", text)
        text = _BEARER.sub(rf"\1{MASK}", text)
        return _OPENAI_KEY.sub(MASK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self._redact_record(record)
        except Exception:  # a record we cannot inspect is still logged (redacted as far as we got)
            pass
        return True

    def _redact_record(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        clean = self.redact(message)
        if clean != message:  # formatted once here, so an argument's str() cannot reveal it later
            record.msg, record.args = clean, None
        for key, value in list(record.__dict__.items()):
            if key in _STANDARD or value is None or isinstance(value, (bool, int, float)):
                continue
            text = value if isinstance(value, str) else str(value)
            clean = self.redact(text)
            if clean != text:
                record.__dict__[key] = clean
        if record.exc_info and not record.exc_text:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)


_redactor: RedactSecrets | None = None


def add_secret(value: str) -> None:
    """Mask this value in every log line from now on (a token generated at run time)."""
    if _redactor is not None and value:
        _redactor.add([value])


class FieldsFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        fields = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        if fields:
            base += " " + " ".join(f"{k}={v!r}" if isinstance(v, str) and " " in v else f"{k}={v}" for k, v in fields.items())
        return base


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the moment of the record (a captured or replaced stderr is
    followed, never written to after it was closed)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def setup_logging(level: str = "INFO", stream: TextIO | None = None) -> logging.Handler:
    global _redactor
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(FieldsFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    _redactor = RedactSecrets()
    handler.addFilter(_redactor)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("websockets", "aiohttp.access", "faster_whisper", "piper"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler
