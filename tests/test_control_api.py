"""The control API's edges: strict bodies (issue 8 items 6 and 7), health and metrics, the status stream."""

import asyncio
import json

import aiohttp
import pytest

from streamer.control import bodies as b
from streamer.control.metrics import render
from tests.test_control_live import _wait_for, start


def test_deeply_nested_json_is_refused_without_recursion():
    deep = b"[" * 5000 + b"]" * 5000
    assert b.json_depth(deep) == 5000
    assert b.json_depth(b'{"text": "[[[[{{{{ not nesting"}') == 1  # brackets inside strings do not count
    with pytest.raises(b.BodyError) as e:
        b.parse_json_object(deep)
    assert e.value.status == 400 and "nested deeper" in str(e.value)


@pytest.mark.parametrize("body, field, reason", [
    ({"price": "nan"}, "price", "valid number"),
    ({"price": float("inf")}, "price", "finite"),
    ({"stock": 1.9}, "stock", "valid integer"),
    ({"stock": True}, "stock", "valid integer"),
    ({"stock": "7"}, "stock", "valid integer"),
    ({"price": -1}, "price", "greater than or equal"),
    ({"id": {"a": 1}}, "id", "valid string"),
    ({"colour": "red"}, "colour", "Extra inputs"),
])
def test_product_fields_are_typed_strictly(body, field, reason):
    with pytest.raises(b.BodyError) as e:
        b.validate(b.ProductBody, body)
    assert e.value.status == 422 and e.value.field == field and reason in str(e.value)
    ok = b.validate(b.ProductBody, {"price": 39, "stock": 7, "original_price": 59.5})
    assert (ok.price, ok.stock, ok.original_price) == (39.0, 7, 59.5)


@pytest.mark.parametrize("raw", [b'{"price": NaN}', b'{"price": Infinity}', b'{"price": -Infinity}'])
def test_non_finite_json_constants_are_not_numbers(raw):
    with pytest.raises(b.BodyError) as e:
        b.parse_json_object(raw)
    assert e.value.status == 400 and "not a JSON number" in str(e.value)


def _parse_prometheus(text):
    """name{labels} -> value, checking every sample has HELP and TYPE lines before it."""
    samples, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
        elif line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            assert key.split("{")[0] in typed, line
            samples[key] = float(value)
    return samples


def test_metrics_render_the_status_in_prometheus_text_format():
    status = {"ticks": 1234, "fps": 25.0, "av_offset_ms": 150.0, "paused": True, "muted": False, "queue": 2,
              "queue_items": [{"priority": 1}, {"priority": 3}, {"priority": -1}], "paid_pending": 1,
              "sinks": {"rtmp": {"ok": True, "state": "down", "written": 10, "dropped": 2, "skipped": 30},
                        "recording": {"ok": True, "written": 1234, "dropped": 0}},
              "sources": [{"name": 'replay "夜市"', "connected": None, "error": ""}],
              "errors": {"tts": {"timeout": 3}}}
    m = _parse_prometheus(render(status))
    assert m["streamer_ticks_total"] == 1234 and m["streamer_av_offset_seconds"] == 0.15
    assert m["streamer_paused"] == 1 and m['streamer_queue_depth{class="paid"}'] == 1
    assert m['streamer_queue_depth{class="held"}'] == 1 and m["streamer_paid_pending"] == 1
    assert m['streamer_sink_up{sink="rtmp"}'] == 0 and m['streamer_sink_up{sink="recording"}'] == 1
    assert m['streamer_sink_skipped_ticks_total{sink="rtmp"}'] == 30 and m["streamer_dropped_ticks_total"] == 32
    assert m['streamer_source_up{source="replay \\"夜市\\""}'] == 1
    assert m['streamer_errors_total{stage="tts",kind="timeout"}'] == 3


@pytest.mark.slow
async def test_bad_bodies_change_nothing_and_health_needs_no_token(tmp_path):
    app, control, base, auth = await start(tmp_path)
    root = base.removesuffix("/api")
    try:
        async with aiohttp.ClientSession(headers=auth) as http, aiohttp.ClientSession() as anon:
            await http.post(f"{base}/pause")
            before = app.update_product()
            for path, raw, status, field in [
                ("say", '{"text": {"a": 1}}', 422, "text"),
                ("say", "[" * 5000 + "]" * 5000, 400, ""),
                ("chat", '{"user": "Ann", "text": "hi", "amount": "nan", "kind": "super_chat"}', 422, "amount"),
                ("chat", "{" * 5000, 400, ""),
                ("product", '{"price": "nan"}', 422, "price"),
                ("product", '{"price": Infinity}', 400, ""),
                ("product", '{"stock": 1.9}', 422, "stock"),
                ("ban", '{"user": 42}', 422, "user"),
            ]:
                r = await http.post(f"{base}/{path}", data=raw)
                body = await r.json()
                assert r.status == status and body["ok"] is False, (path, raw[:30], body)
                assert body.get("field", "") == field or field in body["error"], body
            assert app.update_product() == before and app.director.stats()["queued"] == 0  # nothing spoken, queued or changed
            assert (await http.get(f"{base}/status")).status == 200  # the server is fine after all that

            r = await anon.get(f"{root}/healthz")
            assert await _wait_for(lambda: app.healthy())
            r = await anon.get(f"{root}/healthz")
            assert r.status == 200 and (await r.text()) == "ok\n"
            assert (await anon.get(f"{root}/metrics")).status == 401
            r = await http.get(f"{root}/metrics")
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            metrics = _parse_prometheus(await r.text())
            assert metrics["streamer_ticks_total"] > 0 and metrics["streamer_paused"] == 1
    finally:
        await control.stop()
        await app.stop()


@pytest.mark.slow
async def test_status_stream_pushes_each_change_and_commands_take_effect(tmp_path):
    app, control, base, auth = await start(tmp_path)
    try:
        async with aiohttp.ClientSession(headers=auth) as http:
            events = await http.get(f"{base}/events")
            assert events.headers["Content-Type"].startswith("text/event-stream")

            async def next_status(cond):
                while True:
                    line = await asyncio.wait_for(events.content.readline(), 20)
                    if line.startswith(b"data: "):
                        snap = json.loads(line[6:])
                        if cond(snap):
                            return snap

            await next_status(lambda s: "ticks" in s)
            await http.post(f"{base}/pause")
            assert (await next_status(lambda s: s["paused"]))["paused"] is True
            for user, text in [("Sam", "how much is it?"), ("小明", "有优惠吗？")]:
                await http.post(f"{base}/chat", json={"user": user, "text": text})
            await http.post(f"{base}/chat", json={"user": "Rich", "kind": "super_chat", "text": "包邮吗", "amount": 30,
                                                   "currency": "CNY"})
            snap = await next_status(lambda s: len(s["queue_items"]) == 3)
            assert {e["user"] for item in snap["queue_items"] for e in item["events"]} == {"Sam", "小明", "Rich"}
            assert snap["paid_pending"] == 1
            banner = app.overlay.scene.banners[-1][1]  # the super chat is on its way to the screen
            assert (banner.who, banner.what, banner.amount) == ("Rich", "包邮吗", "30 CNY")
            r = await (await http.post(f"{base}/clear", json={})).json()
            assert r["removed"] == 2  # the paid message stays: money was spent on it
            snap = await next_status(lambda s: len(s["queue_items"]) == 1)
            assert snap["queue_items"][0]["events"][0]["user"] == "Rich"

            r = await (await http.post(f"{base}/overlay", json={"name": "chat", "enabled": False})).json()
            assert "chat" not in r["overlays"] and "chat" not in app.overlay.scene.enabled
            assert (await http.post(f"{base}/overlay", json={"name": "ticker", "enabled": False})).status == 422
            await http.post(f"{base}/product", json={"price": 39, "original_price": 59, "sale_ends_in_s": 300})
            product = app.overlay.scene.product
            assert (product.price, product.original_price) == (39, 59) and product.sale_ends_at is not None
            await http.post(f"{base}/mute", json={"muted": True})
            assert (await next_status(lambda s: s["muted"]))["muted"] is True
            r = await http.post(f"{base}/ban_current")
            assert r.status == 409 and "no viewer" in (await r.json())["error"]
            events.close()
    finally:
        await control.stop()
        await app.stop()


@pytest.mark.slow
async def test_another_sites_page_cannot_open_stage_viewers(tmp_path):
    pytest.importorskip("aiortc")
    from tests.test_panel_browser import _start

    app, control, _ = await _start(tmp_path, "\n[outputs.stage]\nenabled = true\n")
    try:
        async with aiohttp.ClientSession() as anon:
            offer = {"sdp": "v=0", "type": "offer"}
            r = await anon.post(f"{control.url}/stage/offer", json=offer, headers={"Origin": "https://evil.example"})
            assert r.status == 403
            r = await anon.post(f"{control.url}/stage/offer", data=json.dumps(offer),
                                headers={"Content-Type": "text/plain"})  # a "simple" cross-site request
            assert r.status == 415
            r = await anon.post(f"{control.url}/stage/offer", json=offer, headers={"Origin": control.url})
            assert r.status == 400 and "offer" in (await r.json())["error"]  # same origin, but not an SDP offer
        assert app.stage_hub().served == 1 and not app.stage_hub().viewers
    finally:
        await control.stop()
        await app.stop()
