"""The paid-message ledger in SQLite: durable settings, pruning, a corrupt or locked file, an old schema."""

import json
import sqlite3
import time

import pytest

from streamer.build import build_state
from streamer.config import ConfigError, load_settings
from streamer.director.state import StateError, StateStore
from streamer.events import Amount, ChatEvent, EventKind, User
from tests.conftest import write_config


def paid(text, value=30.0, platform="douyin"):
    return ChatEvent(platform, "r", EventKind.SUPER_CHAT, User("u1", "Rich"), text, Amount(value, "CNY", value))


def test_the_ledger_is_written_through_to_disk_and_keyed_by_platform(tmp_path):
    store = StateStore(tmp_path / "s.db")
    a, b = paid("谢谢主播"), paid("thanks!", platform="twitch")
    object.__setattr__(b, "id", a.id)  # the same id on two platforms is two messages
    assert store.add_paid(a) and store.add_paid(b) and not store.add_paid(a)
    with sqlite3.connect(tmp_path / "s.db") as other:  # another connection sees it at once: committed
        assert other.execute("SELECT COUNT(*) FROM paid").fetchone()[0] == 2
    journal, sync = (store._db.execute(q).fetchone()[0] for q in ("PRAGMA journal_mode", "PRAGMA synchronous"))
    assert journal == "wal" and sync == 2  # 2 = FULL: a power loss keeps what was acknowledged
    store.close()


def test_pending_messages_come_back_most_valuable_first_and_closed_ones_are_pruned(tmp_path):
    store = StateStore(tmp_path / "s.db", keep_days=1)
    small, big, done = paid("small", 5), paid("big", 500), paid("done", 50)
    for e in (small, big, done):
        store.add_paid(e)
    store.close_paid([done], "answered")
    assert [e.text for e in store.pending()] == ["big", "small"]
    store._db.execute("UPDATE paid SET closed = ? WHERE state = 'answered'", (time.time() - 2 * 86400,))
    assert store.prune() == 1 and store.counts() == {"pending": 2}
    store.close()


def test_a_corrupt_database_stops_the_start_unless_the_operator_asks_to_reset(tmp_path):
    db = tmp_path / "state.db"
    db.write_bytes(b"this is not a database" * 100)
    cfg = write_config(tmp_path, f'[director]\nstate_db = "{db}"\n')
    with pytest.raises(ConfigError, match=r"director\.state_db: .*state\.db.*unreadable.*RESET_CORRUPT_STATE"):
        build_state(load_settings(cfg, environ={}))
    assert db.read_bytes().startswith(b"this is not")  # nothing destroyed
    store = build_state(load_settings(cfg, environ={"STREAMER__DIRECTOR__RESET_CORRUPT_STATE": "true"}))
    assert store.pending() == [] and store.add_paid(paid("新的"))
    store.close()
    [aside] = tmp_path.glob("state.db.corrupt-*")
    assert aside.read_bytes().startswith(b"this is not")  # kept for the operator


def test_a_database_locked_by_another_process_names_the_problem(tmp_path):
    db = tmp_path / "s.db"
    StateStore(db).close()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StateError, match="locked by another process"):
            StateStore(db)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_ledger_from_the_first_version_is_carried_over(tmp_path):
    db = tmp_path / "old.db"
    old = sqlite3.connect(db)
    old.executescript("CREATE TABLE paid (event_id TEXT PRIMARY KEY, payload TEXT NOT NULL, received REAL NOT NULL,"
                      " answered REAL); CREATE TABLE bans (who TEXT PRIMARY KEY, created REAL NOT NULL);")
    e1, e2 = paid("answered already"), paid("still owed", 99)
    old.execute("INSERT INTO paid VALUES (?, ?, ?, ?)", ("ev1", json.dumps({**e1.to_dict(), "id": "ev1"}), 1.0, 2.0))
    old.execute("INSERT INTO paid VALUES (?, ?, ?, NULL)", ("ev2", json.dumps({**e2.to_dict(), "id": "ev2"}), 1.0))
    old.execute("INSERT INTO bans VALUES ('douyin:troll', 1.0)")
    old.commit()
    old.close()
    store = StateStore(db)
    assert [(e.id, e.text) for e in store.pending()] == [("ev2", "still owed")]
    assert store.bans() == ["douyin:troll"]
    store.close()
