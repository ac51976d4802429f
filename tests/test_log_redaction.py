"""No secret reaches the log stream: URLs' credentials, secret environment values, the control token."""

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from streamer.log import RedactSecrets, setup_logging
from tests.conftest import write_config
from tests.fakes.openai import FakeOpenAI


@pytest.fixture
def log_stream():
    """setup_logging() writing into a buffer; the root logger is restored afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    setup_logging("INFO", stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


async def test_openai_client_request_urls_are_logged_without_credentials(log_stream, monkeypatch):
    openai = pytest.importorskip("openai", reason="needs the llm extra: pip install 'streamer[llm]'")
    async with FakeOpenAI() as server:
        url = server.url.replace("http://", "http://bob:hunter2pass@")
        client = openai.AsyncOpenAI(base_url=url, api_key="sk-live-0123456789abcdefXYZ",
                                    default_query={"api-key": "AZKEY-5551234"})
        try:
            stream = await client.chat.completions.create(model="m", stream=True,
                                                          messages=[{"role": "user", "content": "多少钱？"}])
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        finally:
            await client.close()
    assert "49 dollars" in text  # the request really went through the logged URL
    log = log_stream.getvalue()
    [request] = [line for line in log.splitlines() if "HTTP Request: POST" in line]  # logged at INFO
    assert f"http://***@127.0.0.1:{server.port}/v1/chat/completions?api-key=*** " in request
    for secret in ("hunter2pass", "bob:", "AZKEY-5551234", "sk-live-0123456789abcdefXYZ"):
        assert secret not in log


@pytest.fixture
def redactor():
    env = {"OPENAI_API_KEY": "sk-proj-abcdef123456", "BILIBILI_COOKIE": "SESSDATA=abc%2C123xyz; buvid3=BUVID-777-888",
           "TWITCH_TOKEN": "oauth:twitchsecret42", "OBS_PASSWORD": "obs-pass-99", "MY_SERVICE_TOKEN": "tok-123456",
           "HOME": "/root", "LANG": "zh_CN.UTF-8", "SHORT_KEY": "abc"}
    return RedactSecrets(environ=env)


def _log_through(redactor, *args, exc=None, **extra):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(redactor)
    handler.setFormatter(logging.Formatter("%(message)s %(url)s" if "url" in extra else "%(message)s"))
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        if exc is not None:
            try:
                raise exc
            except Exception:
                logger.exception(*args, extra=extra)
        else:
            logger.warning(*args, extra=extra)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    return stream.getvalue()


@pytest.mark.parametrize("message, args, leaked", [
    ("connecting to %s", ("wss://user:pa55word@example.com:443/sub",), ["pa55word", "user:"]),
    ("GET %s", ("https://api.example.com/v1/models?api_key=K-12345&x=1&access_token=AT-999&sig=SIG-1",),
     ["K-12345", "AT-999", "SIG-1"]),
    ("pushing to %s", ("rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl-mnop",), ["abcd-efgh-ijkl-mnop"]),
    ("header %s", ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",), ["eyJhbGciOiJIUzI1NiJ9"]),
    ("弹幕 from %s said %s", ("小明", "我的密钥是 sk-proj-abcdef123456 哈哈"), ["sk-proj-abcdef123456"]),
    ("cookie %s", ("SESSDATA=abc%2C123xyz",), ["abc%2C123xyz"]),
    ("buvid %s and twitch %s", ("BUVID-777-888", "oauth:twitchsecret42"), ["BUVID-777-888", "twitchsecret42"]),
])
def test_secrets_are_masked_in_messages_and_arguments(redactor, message, args, leaked):
    line = _log_through(redactor, message, *args)
    for secret in leaked:
        assert secret not in line
    assert "***" in line


def test_ordinary_text_in_both_languages_is_untouched(redactor):
    line = _log_through(redactor, "viewer %s asked %s at %s", "小明", "这个多少钱？ key points please",
                        "https://shop.example.com/item?id=42&lang=zh")
    assert line.strip() == ("viewer 小明 asked 这个多少钱？ key points please at "
                            "https://shop.example.com/item?id=42&lang=zh")
    assert "abc" in _log_through(redactor, "abc")  # a 3-character secret value is not masked everywhere


def test_extra_fields_and_tracebacks_are_masked(redactor):
    line = _log_through(redactor, "request failed", url="http://admin:obs-pass-99@127.0.0.1:4455",
                        exc=ConnectionError("cannot reach https://x.example/v1?token=tok-123456"))
    assert "obs-pass-99" not in line and "tok-123456" not in line and "admin:" not in line
    assert "ConnectionError" in line  # the traceback is still there


def test_generated_token_can_be_registered(log_stream):
    from streamer.log import add_secret

    logging.getLogger("tests.redaction").warning("echo %s", "Zq9-generated-token")
    add_secret("Zq9-generated-token")
    logging.getLogger("tests.redaction").warning("echo %s", "Zq9-generated-token")
    first, second = log_stream.getvalue().splitlines()
    assert "Zq9-generated-token" in first and "Zq9-generated-token" not in second


PROFILE = """
[stream]
width = 320
height = 180
[director]
state_db = "STATE"
[persona]
catalogue = "{REPO}/config/products/demo.toml"
[[chat]]
type = "replay"
path = "{REPO}/config/samples/commerce_en.jsonl"
[outputs.camera]
enabled = "off"
[outputs.recording]
enabled = false
[control]
port = PORT
"""


@pytest.mark.slow
def test_generated_control_token_goes_to_stdout_once_never_to_the_log(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = write_config(tmp_path, PROFILE.replace("PORT", str(port)).replace("STATE", str(tmp_path / "s.db")))
    env = {k: v for k, v in os.environ.items() if k != "STREAMER_CONTROL_TOKEN"}
    proc = subprocess.Popen([sys.executable, "-m", "streamer", "run", "-c", str(cfg)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # blocks until the app printed it (or died)
        assert "control API token" in line, proc.stderr.read() if proc.poll() is not None else line
        token = line.rsplit(" ", 1)[1].strip()
        deadline = time.monotonic() + 60
        status = None
        while status is None:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/api/status",
                                             headers={"Authorization": f"Bearer {token}"})
                status = json.load(urllib.request.urlopen(req, timeout=5))
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "control API never answered"
                time.sleep(0.2)
        assert status["ok"] is True  # it is the real token
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert token not in err and token not in out  # printed once, and the log stream never carries it
    assert "streamer stopped" in err
