"""Durable state in SQLite: the ledger of paid messages, and operator bans.

A paid message (super chat, gift, membership, bits) is written when it arrives and closed when its reply
was heard, when the operator dropped it, or when it failed ``max_attempts`` times; after a restart or a
crash every pending one is answered, once. Rows are keyed by (platform, event id): ids are unique across
processes (streamer.events), so a message from a second run never collides with a restored one.

Durability: WAL with ``synchronous=FULL``: a message the sender was told was accepted survives a power
loss, not just a crash. Closed rows are pruned after ``keep_days``. A corrupt file, or one locked by another
process, stops the start with a message saying which file and what to do; only ``reset_corrupt`` (the
operator's explicit choice) moves a corrupt file aside and starts with an empty ledger.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from streamer.events import ChatEvent

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
SCHEMA = """
CREATE TABLE IF NOT EXISTS paid (
    platform TEXT NOT NULL,
    event_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    value REAL NOT NULL,
    received REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'pending',
    closed REAL,
    reason TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (platform, event_id)
);
CREATE INDEX IF NOT EXISTS paid_pending ON paid (state, value DESC, received);
CREATE TABLE IF NOT EXISTS bans (
    who TEXT PRIMARY KEY,
    created REAL NOT NULL
);
"""
CLOSED_STATES = ("answered", "failed", "skipped", "rejected")


class StateError(RuntimeError):
    """The state database cannot be used; the message names the file and what to do."""


class StateStore:
    def __init__(self, path: str | Path, *, keep_days: float = 30.0, reset_corrupt: bool = False) -> None:
        self.path = Path(path)
        self.keep_days = keep_days
        self._lock = threading.Lock()
        memory = str(path) == ":memory:"
        if not memory:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open(str(path))
        except sqlite3.DatabaseError as e:
            if memory or "locked" in str(e) or not reset_corrupt:
                raise self._explain(e) from None
            aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
            self.path.rename(aside)
            log.error("state database was corrupt; moved aside, starting with an empty ledger",
                      extra={"path": str(self.path), "moved_to": str(aside)})
            self._db = self._open(str(path))
        self.prune()

    @staticmethod
    def _open(path: str) -> sqlite3.Connection:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=5.0)
        try:
            if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("database disk image is malformed")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version < SCHEMA_VERSION and _has_table(db, "paid"):
                _migrate_v1(db)
            db.executescript(SCHEMA)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _explain(self, e: sqlite3.DatabaseError) -> StateError:
        if "locked" in str(e):
            return StateError(f"{self.path}: the state database is locked by another process (another streamer "
                              "on the same database? each room needs its own [director] state_db)")
        return StateError(f"{self.path}: the state database is unreadable ({e}). Unanswered paid messages may be in "
                          "it: keep a copy, then move it aside, or start with STREAMER__DIRECTOR__RESET_CORRUPT_STATE"
                          "=true to set it aside automatically and begin with an empty ledger")

    def _run(self, sql: str, args: tuple[Any, ...] | list[tuple[Any, ...]] = (), many: bool = False) -> list[Any]:
        with self._lock:
            if many:
                self._db.executemany(sql, args)  # type: ignore[arg-type]
                return []
            return self._db.execute(sql, args).fetchall()

    # ------------------------------------------------------------------ paid ledger
    def add_paid(self, event: ChatEvent) -> bool:
        """Record a paid message; False when it was recorded before (a platform re-delivery)."""
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO paid (platform, event_id, payload, value, received) VALUES (?, ?, ?, ?, ?)",
                (event.platform, event.id, json.dumps(event.to_dict(), ensure_ascii=False), event.value, time.time()))
            return cur.rowcount == 1

    def close_paid(self, events: list[ChatEvent], state: str, reason: str = "") -> None:
        """Close pending messages: answered (heard), failed, skipped (the operator) or rejected (moderation)."""
        assert state in CLOSED_STATES, state
        self._run("UPDATE paid SET state = ?, closed = ?, reason = ? WHERE platform = ? AND event_id = ? "
                  "AND state = 'pending'", [(state, time.time(), reason, e.platform, e.id) for e in events], many=True)

    def attempt(self, event: ChatEvent) -> int:
        """Count one more reply that was not heard; returns the attempts so far."""
        rows = self._run("UPDATE paid SET attempts = attempts + 1 WHERE platform = ? AND event_id = ? "
                         "RETURNING attempts", (event.platform, event.id))
        return int(rows[0][0]) if rows else 0

    def pending(self, limit: int = -1, exclude: set[tuple[str, str]] | None = None) -> list[ChatEvent]:
        """Pending paid messages, most valuable first (then oldest first)."""
        rows = self._run("SELECT platform, event_id, payload FROM paid WHERE state = 'pending' "
                         "ORDER BY value DESC, received")
        out = []
        for platform, event_id, payload in rows:
            if exclude and (platform, event_id) in exclude:
                continue
            out.append(ChatEvent.from_dict(json.loads(payload)))
            if len(out) == limit:
                break
        return out

    def failed(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self._run("SELECT payload, attempts, closed, reason FROM paid WHERE state = 'failed' "
                         "ORDER BY closed DESC LIMIT ?", (limit,))
        return [{**json.loads(p), "attempts": a, "failed_at": c, "reason": r} for p, a, c, r in rows]

    def counts(self) -> dict[str, int]:
        return {state: n for state, n in self._run("SELECT state, COUNT(*) FROM paid GROUP BY state")}

    def prune(self) -> int:
        """Delete closed rows older than ``keep_days``."""
        cutoff = time.time() - self.keep_days * 86400
        with self._lock:
            return self._db.execute("DELETE FROM paid WHERE state != 'pending' AND closed < ?", (cutoff,)).rowcount

    # ------------------------------------------------------------------ bans
    def add_ban(self, who: str) -> None:
        self._run("INSERT OR IGNORE INTO bans (who, created) VALUES (?, ?)", (who.lower(), time.time()))

    def remove_ban(self, who: str) -> None:
        self._run("DELETE FROM bans WHERE who = ?", (who.lower(),))

    def bans(self) -> list[str]:
        return [r[0] for r in self._run("SELECT who FROM bans")]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def _migrate_v1(db: sqlite3.Connection) -> None:
    """The first schema keyed paid rows by a per-process counter id: carry its rows over."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(paid)")}
    if "platform" in columns:
        return
    rows = db.execute("SELECT payload, received, answered FROM paid").fetchall()
    db.execute("ALTER TABLE paid RENAME TO paid_v1")
    db.executescript(SCHEMA)
    for payload, received, answered in rows:
        d = json.loads(payload)
        value = (d.get("amount") or {}).get("cny") or 0.0
        db.execute("INSERT OR IGNORE INTO paid (platform, event_id, payload, value, received, state, closed) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)", (d["platform"], d["id"], payload, value, received,
                                                     "answered" if answered else "pending", answered))
    db.execute("DROP TABLE paid_v1")
