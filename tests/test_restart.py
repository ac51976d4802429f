"""Paid messages across crashes, with real processes: ``streamer run`` is killed (SIGKILL) before it speaks and
again mid-speech, restarted each time; every paid message is answered exactly once, the most valuable first,
none is lost, and a ban made before the first crash still holds after the last restart."""

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request

import pytest
from websockets.sync.client import connect

from tests.conftest import write_config

pytestmark = pytest.mark.slow

TOKEN = "restart-test-token"
PROFILE = """
[stream]
width = 320
height = 180
[director]
state_db = "STATE"
thanks_batch_s = 0.5
[persona]
catalogue = "{REPO}/config/products/demo.toml"
idle_after_s = 600
[[chat]]
type = "websocket"
port = WSPORT
[outputs.camera]
enabled = "off"
[outputs.recording]
enabled = false
[control]
port = CPORT
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Run:
    """One ``streamer run`` process, talked to over its websocket and control API."""

    def __init__(self, cfg, ws_port, control_port, tmp_path, n):
        self.ws_port, self.control_port = ws_port, control_port
        self.err = open(tmp_path / f"run{n}.log", "w+")  # noqa: SIM115 - read back after the process ends
        env = {**os.environ, "STREAMER_CONTROL_TOKEN": TOKEN}
        self.proc = subprocess.Popen([sys.executable, "-m", "streamer", "run", "-c", str(cfg)], env=env,
                                     stdout=subprocess.DEVNULL, stderr=self.err)
        self.wait_until(lambda s: s["ticks"] > 0, "start")

    def api(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.control_port}/api/{path}", data=data,
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        return json.load(urllib.request.urlopen(req, timeout=5))

    def wait_until(self, cond, what, timeout=120):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            assert self.proc.poll() is None, f"streamer exited while waiting for {what}: {self.log()[-3000:]}"
            try:
                status = self.api("status")
                if cond(status):
                    return status
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}: {self.log()[-3000:]}")

    def send(self, messages):
        ids = []
        with connect(f"ws://127.0.0.1:{self.ws_port}", additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
            for m in messages:
                ws.send(json.dumps(m))
                reply = json.loads(ws.recv())
                assert reply["ok"], reply
                ids.append(reply["id"])
        return ids

    def kill(self, sig=signal.SIGKILL):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)

    def log(self):
        self.err.flush()
        self.err.seek(0)
        return self.err.read()


def super_chat(user, value, text):
    return {"kind": "super_chat", "user": {"id": user, "name": user}, "text": text, "amount": value, "currency": "CNY"}


def answered_turns(log):
    """(answers id, turn id) of every reply that started, in the order they started."""
    seen = []
    for line in log.splitlines():
        m = re.search(r"speech started .*turn=(\S+) answers=(\S+)", line)
        if m and m.group(2) != "None" and (m.group(2), m.group(1)) not in seen:
            seen.append((m.group(2), m.group(1)))
    return seen


def test_paid_messages_survive_crashes_and_are_answered_once_by_value(tmp_path):
    ws_port, control_port = _free_port(), _free_port()
    db = tmp_path / "state.db"
    cfg = write_config(tmp_path, PROFILE.replace("STATE", str(db)).replace("WSPORT", str(ws_port))
                       .replace("CPORT", str(control_port)))
    value = {}

    run1 = Run(cfg, ws_port, control_port, tmp_path, 1)
    run1.api("ban", {"user": "Troll"})
    first = [("A1", 30, "第一条"), ("A2", 10, "second one"), ("A3", 50, "第三条，谢谢主播")]
    for (_user, v, _), i in zip(first, run1.send([super_chat(u, v, t) for u, v, t in first]), strict=True):
        value[i] = v
    run1.kill()  # before (or just as) anything is said

    run2 = Run(cfg, ws_port, control_port, tmp_path, 2)
    second = [("B1", 20, "hello"), ("B2", 40, "这个多少钱？"), ("B3", 60, "big fan!")]
    for (_user, v, _), i in zip(second, run2.send([super_chat(u, v, t) for u, v, t in second]), strict=True):
        value[i] = v
    speaking = run2.wait_until(lambda s: s["answering"] in value, "a paid reply to be speaking")
    run2.kill()  # mid-speech
    assert speaking["answering"] in value

    run3 = Run(cfg, ws_port, control_port, tmp_path, 3)
    [troll] = run3.send([{"user": {"id": "Troll", "name": "Troll"}, "text": "how much is it?"}])
    run3.wait_until(lambda s: s["paid_pending"] == 0 and s["speaking"] is None, "every paid message answered")
    run3.kill(signal.SIGINT)

    logs = [r.log() for r in (run1, run2, run3)]
    starts = [(n, a, t) for n, log in enumerate(logs) for a, t in answered_turns(log)]
    paid_starts = [(n, a) for n, a, _ in starts if a in value]
    # every paid message was answered, and exactly once over the three processes
    assert sorted(a for _, a in paid_starts) == sorted(value), (paid_starts, value)
    # the last run answered what was left, most valuable first
    last = [value[a] for n, a in paid_starts if n == 2]
    assert last == sorted(last, reverse=True) and len(last) >= 3
    # the ban made before the first crash still held after the last restart
    assert all(a != troll for _, a, _ in starts)
    with sqlite3.connect(db) as con:
        states = dict(con.execute("SELECT event_id, state FROM paid"))
    assert {states[i] for i in value} == {"answered"}
