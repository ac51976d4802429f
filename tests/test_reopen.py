"""Reopening a sink's device with backoff, counted and logged once per outage."""

import logging

from streamer.sinks.reopen import Reopener


class Device:
    def __init__(self):
        self.open_ok = True
        self.send_ok = True
        self.opens = self.closes = self.sent = 0

    def open(self):
        self.opens += 1
        if not self.open_ok:
            raise OSError("No such device")

    def send(self):
        if not self.send_ok:
            raise BrokenPipeError("Broken pipe")
        self.sent += 1

    def close(self):
        self.closes += 1


def test_backoff_doubles_counts_skipped_ticks_and_logs_once_per_outage(caplog):
    now = [0.0]
    r = Reopener("camera", first_delay_s=1.0, max_delay_s=4.0, time_fn=lambda: now[0])
    dev = Device()
    r.up()
    caplog.set_level(logging.INFO)
    assert r.deliver(dev.send, dev.open, dev.close) and dev.sent == 1
    dev.send_ok = dev.open_ok = False
    assert not r.deliver(dev.send, dev.open, dev.close)  # the device vanished: closed, down
    assert r.state == "down" and dev.closes == 1
    tries = []
    for _ in range(40):  # 10 s of ticks at 4 per second
        now[0] += 0.25
        opens = dev.opens
        r.deliver(dev.send, dev.open, dev.close)
        if dev.opens > opens:
            tries.append(now[0])
    assert tries == [1.0, 3.0, 7.0]  # 1, 2, then 4 s apart (the ceiling)
    assert r.skipped == 41  # every tick while down is skipped and counted, tried or not
    dev.send_ok = dev.open_ok = True
    now[0] += 5.0
    assert r.deliver(dev.send, dev.open, dev.close) and r.state == "live" and r.reopens == 1
    lost = [rec for rec in caplog.records if "lost its device" in rec.getMessage()]
    back = [rec for rec in caplog.records if "is back" in rec.getMessage()]
    assert len(lost) == 1 and len(back) == 1 and r.outages == 1


def test_an_operator_reopen_closes_and_opens_at_once():
    r = Reopener("rtmp", first_delay_s=30.0)
    dev = Device()
    r.up()
    r.request()
    assert r.deliver(dev.send, dev.open, dev.close)
    assert (dev.closes, dev.opens, dev.sent) == (1, 1, 1) and r.state == "live" and r.reopens == 1
