"""Durable state in SQLite: paid messages not yet answered, and operator bans.

Paid items (super chats, gifts, memberships, bits) are written when they arrive and marked answered
when their reply has been spoken (or the operator skipped it), so after a restart or a crash every
unanswered one is answered, and none twice. SQLite in WAL mode; each write is its own transaction.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from streamer.events import Amount, ChatEvent, EventKind, User

SCHEMA = """
CREATE TABLE IF NOT EXISTS paid (
    event_id TEXT PRIMARY KEY,
    payload TEXT NOT NULL,
    received REAL NOT NULL,
    answered REAL
);
CREATE TABLE IF NOT EXISTS bans (
    who TEXT PRIMARY KEY,
    created REAL NOT NULL
);
"""


def event_to_json(e: ChatEvent) -> str:
    return json.dumps(e.to_dict(), ensure_ascii=False)


def event_from_json(text: str) -> ChatEvent:
    d: dict[str, Any] = json.loads(text)
    u = d["user"]
    a = d.get("amount")
    return ChatEvent(
        platform=d["platform"], room=d["room"], kind=EventKind(d["kind"]),
        user=User(u["id"], u["name"], u.get("moderator", False), u.get("member", False), u.get("level", 0)),
        text=d.get("text", ""), amount=Amount(a["value"], a["unit"], a["cny"]) if a else None,
        gift_name=d.get("gift", ""), count=d.get("count", 1), timestamp=d.get("timestamp", 0.0), id=d["id"],
        msg_id=d.get("msg_id", ""), action=d.get("action", ""), target=d.get("target", ""),
        emotes=tuple(d.get("emotes", ())), reply_to=d.get("reply_to", ""))


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)

    def add_paid(self, event: ChatEvent) -> None:
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO paid (event_id, payload, received) VALUES (?, ?, ?)",
                             (event.id, event_to_json(event), time.time()))

    def mark_answered(self, event_ids: list[str]) -> None:
        with self._lock:
            self._db.executemany("UPDATE paid SET answered = ? WHERE event_id = ? AND answered IS NULL",
                                 [(time.time(), i) for i in event_ids])

    def unanswered(self) -> list[ChatEvent]:
        with self._lock:
            rows = self._db.execute("SELECT payload FROM paid WHERE answered IS NULL ORDER BY received").fetchall()
        return [event_from_json(r[0]) for r in rows]

    def add_ban(self, who: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO bans (who, created) VALUES (?, ?)", (who.lower(), time.time()))

    def remove_ban(self, who: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM bans WHERE who = ?", (who.lower(),))

    def bans(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT who FROM bans")]

    def close(self) -> None:
        with self._lock:
            self._db.close()
