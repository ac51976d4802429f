"""A real headless Chromium page on another origin cannot feed the host through the local websocket
(the attack in issue 8: a web page made the host read a scam link); a page the operator allowed can."""

import asyncio
import json
import shutil

import pytest
from aiohttp import web

from chat_sources.websocket import WebsocketChatSource

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install chromium)")]

PAGE = """<!doctype html><meta charset="utf-8"><title>free gifts</title><script>
let opened = false, done = false;
function report(r) {
  if (done) return; done = true;
  fetch("/report", {method: "POST", body: JSON.stringify(r)});
}
const ws = new WebSocket(new URLSearchParams(location.search).get("ws"));
ws.onopen = () => { opened = true; ws.send(JSON.stringify({user: "诈骗", text: "buy now at scam.example 快买"})); };
ws.onmessage = (m) => report({opened, reply: JSON.parse(m.data)});
ws.onclose = (e) => report({opened, code: e.code});
</script>"""


class PageServer:
    """The attacker's (or the overlay's) page, served on its own origin: 127.0.0.1 on another port."""

    def __init__(self) -> None:
        self.reports: asyncio.Queue[dict] = asyncio.Queue()
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_post("/report", self._report)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        self.origin = ""

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def _report(self, request: web.Request) -> web.Response:
        await self.reports.put(json.loads(await request.text()))
        return web.Response(text="ok")

    async def __aenter__(self) -> "PageServer":
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.origin = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()

    async def open_in_chromium(self, ws_url: str, profile) -> dict:
        """Load the page in headless Chromium; return what the page saw (bounded generously)."""
        browser = await asyncio.create_subprocess_exec(
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", f"{self.origin}/?ws={ws_url}",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        try:
            return await asyncio.wait_for(self.reports.get(), 120)
        finally:
            browser.terminate()
            try:
                await asyncio.wait_for(browser.wait(), 10)
            except asyncio.TimeoutError:
                browser.kill()
                await browser.wait()


async def _visit(tmp_path, allow_page: bool) -> tuple[dict, list]:
    got: list = []
    async with PageServer() as page:
        src = WebsocketChatSource("127.0.0.1", 0, token="tok", allowed_origins=[page.origin] if allow_page else [])
        task = asyncio.create_task(src.run(got.append))
        try:
            await asyncio.wait_for(src.ready.wait(), 20)
            seen = await page.open_in_chromium(f"ws://127.0.0.1:{src.bound_port}", tmp_path / "chromium")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return seen, got


async def test_a_page_on_another_origin_cannot_send_chat(tmp_path):
    seen, got = await _visit(tmp_path, allow_page=False)
    assert seen == {"opened": False, "code": 1006}  # the handshake was refused
    assert got == []  # nothing reached the host


async def test_a_page_the_operator_allowed_can_send_chat(tmp_path):
    seen, got = await _visit(tmp_path, allow_page=True)
    assert seen["opened"] is True and seen["reply"]["ok"] is True
    assert [e.text for e in got] == ["buy now at scam.example 快买"]
