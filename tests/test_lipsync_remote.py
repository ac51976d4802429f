"""Shared lip-sync: a room's frames rendered by the deployment's model over the real wire protocol
(the deployment's own request handling, behind a plain HTTP server on 127.0.0.1:0), compared with
the room's local renderer; faces sent once; a dead or late deployment covered and counted."""

import asyncio
import http.client
import json
import socket
import threading
import urllib.parse

import numpy as np
import pytest

from avatars import load_avatar
from avatars.wav2lip.wire import WireError, decode_request, encode_request

torch = pytest.importorskip("torch", reason="needs torch: pip install torch==2.13.0")

from aiohttp import web  # noqa: E402

from avatars.renderers import create_renderer  # noqa: E402
from avatars.wav2lip.checkpoint import save_official_format  # noqa: E402
from avatars.wav2lip.model import Wav2Lip  # noqa: E402
from avatars.wav2lip.remote import LipSyncClient, RemoteWav2LipRenderer  # noqa: E402
from avatars.wav2lip.renderer import Wav2LipRenderer  # noqa: E402
from streamer.rooms.lipsync import LipSyncModel, answer  # noqa: E402
from streamer.voice.base import create_tts  # noqa: E402

RATE = 48000


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w2l") / "wav2lip_gan.pth"
    save_official_format(Wav2Lip(), path)
    return path


@pytest.fixture(scope="module")
def model(checkpoint):
    return LipSyncModel(checkpoint, device="cpu", precision="float32", threads=1)


@pytest.fixture(scope="module")
def avatar():
    return load_avatar("", 320, 180)


@pytest.fixture(scope="module")
def local(avatar, checkpoint):
    return Wav2LipRenderer(avatar, 25, checkpoint, device="cpu", precision="float32", batch=64)


@pytest.fixture(scope="module")
def expected(local, speech):
    """What the room's own renderer makes of each clip."""
    return {lang: local.analyze(pcm, RATE) for lang, pcm in speech.items()}


@pytest.fixture(scope="module")
def speech():
    """Real speech, English and Mandarin (espeak-ng), cut to 0.4 s (10 frames) so a CPU renders it quickly."""
    out = {}
    for lang, voice, text in (("en", "en-us", "Hello and welcome to the stream"), ("zh", "cmn-latn-pinyin", "欢迎来到直播间")):
        tts = create_tts("espeak", RATE, voice=voice)
        out[lang] = tts.synthesize_blocking(text)[: int(0.4 * RATE)]
        tts.close()
    return out


class LipSyncServer:
    """The deployment's request handling (``lipsync.answer``) behind a plain aiohttp server, in a thread."""

    def __init__(self, model):
        self.model = model
        self.delay = 0.0
        self.faces_received = 0
        self.statuses: list[int] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner = None
        self.url = ""

    async def _infer(self, request):
        return (await asyncio.to_thread(self.model.infer_many, [(request.keys, request.mel)]))[0]

    async def _handle(self, request):
        body = await request.read()
        try:
            self.faces_received += len(json.loads(body[: body.index(b"\n")])["faces"])
        except (ValueError, KeyError):
            pass
        if self.delay:
            await asyncio.sleep(self.delay)
        status, out = await answer(self.model, body, self._infer, max_frames=64)
        self.statuses.append(status)
        return web.Response(body=out, status=status)

    async def _start(self):
        app = web.Application(client_max_size=8 * 2**20)
        app.router.add_post("/lipsync", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]

    def __enter__(self):
        self._thread.start()
        port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        self.url = f"http://127.0.0.1:{port}/lipsync"
        return self

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture
def server(model):
    with LipSyncServer(model) as s:
        yield s


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def speaking(poses):
    return [i for i, p in enumerate(poses) if p.open > 0.02]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_shared_deployment_renders_a_room_exactly_as_its_local_renderer(server, avatar, local, speech, expected,
                                                                           lang):
    pcm = speech[lang]
    room = RemoteWav2LipRenderer(avatar, 25, server.url, first_batch=64, timeout_s=120)
    poses = room.analyze(pcm, RATE)
    talk = speaking(poses)
    assert len(poses) == 10 and len(talk) >= 4
    assert all(poses[i].patch is not None for i in talk)
    assert room.status()["remote_frames"] == len(talk) and room.status()["procedural_frames"] == 0
    mine = expected[lang]
    for i in talk:
        assert np.abs(poses[i].patch.astype(int) - mine[i].patch.astype(int)).max() <= 1
    i = talk[len(talk) // 2]
    shown, reference = room.frame(i, poses[i]), local.frame(i, mine[i])
    assert np.abs(shown.astype(int) - reference.astype(int)).max() <= 2  # pasted the same way
    assert np.abs(shown.astype(int) - room.frame(i, None).astype(int)).mean() > 0.1  # and it is a mouth


def test_one_batch_mixes_rooms_and_each_frame_gets_its_own_face(model):
    rng = np.random.default_rng(4)
    faces = {"shop-a": rng.integers(0, 255, (6, 96, 96), dtype=np.uint8), "店铺-b": np.zeros((6, 96, 96), np.uint8)}
    model.add_faces(faces)
    mel = rng.uniform(-4, 4, (3, 80, 16)).astype(np.float32)
    together = model.infer_many([(["shop-a"] * 3, mel), (["店铺-b", "shop-a", "店铺-b"], mel)])
    alone_a = model.infer_many([(["shop-a"] * 3, mel)])[0]
    alone_b = model.infer_many([(["店铺-b"] * 3, mel)])[0]
    assert (alone_a != alone_b).sum() > 1000  # the two rooms' faces give different mouths
    assert np.array_equal(together[0], alone_a)
    assert np.array_equal(together[1][[0, 2]], alone_b[[0, 2]]) and np.array_equal(together[1][1], alone_a[1])


def test_a_face_crosses_the_network_once_and_again_for_a_fresh_replica(server, avatar, speech):
    room = RemoteWav2LipRenderer(avatar, 25, server.url, first_batch=64, timeout_s=120)
    first = room.analyze(speech["en"], RATE)
    second = room.analyze(speech["zh"], RATE)
    assert server.faces_received == 1 and server.statuses == [200, 200]
    server.model._faces.clear()  # what a replica restarted by Serve knows
    third = room.analyze(speech["en"], RATE)
    assert server.statuses[2:] == [409, 200] and server.faces_received == 2
    for poses in (first, second, third):
        assert all(poses[i].patch is not None for i in speaking(poses))
    assert np.array_equal(first[speaking(first)[0]].patch, third[speaking(third)[0]].patch)


def test_an_unreachable_deployment_is_covered_by_the_procedural_mouth_and_counted(avatar, speech):
    client = LipSyncClient(f"http://127.0.0.1:{closed_port()}/lipsync", retry_after_s=600)
    room = RemoteWav2LipRenderer(avatar, 25, client.url, first_batch=5, batch=5, timeout_s=5, client=client)
    poses = room.analyze(np.concatenate([speech["en"], speech["zh"], speech["en"]]), RATE)  # 6 requests' worth
    talk = speaking(poses)
    assert talk and all(p.patch is None for p in poses)
    st = room.status()
    assert st["procedural_frames"] == len(talk) and st["remote_frames"] == 0 and st["deployment"] == "failing"
    assert st["failed_requests"] == 3 and "Connection refused" in st["last_error"]  # then it stops asking
    i = talk[len(talk) // 2]
    assert np.abs(room.frame(i, poses[i]).astype(int) - room.frame(i, None).astype(int)).mean() > 0.1


def test_a_late_deployment_is_covered_by_the_local_renderer_then_used_again(server, avatar, local, speech, expected):
    server.delay = 30.0
    client = LipSyncClient(server.url, retry_after_s=0.0)
    room = RemoteWav2LipRenderer(avatar, 25, server.url, local=local, first_batch=64, timeout_s=0.3, client=client)
    poses = room.analyze(speech["zh"], RATE)
    talk = speaking(poses)
    assert room.status()["local_frames"] == len(talk) and room.status()["remote_frames"] == 0
    assert all(np.array_equal(poses[i].patch, expected["zh"][i].patch) for i in talk)
    server.delay = 0.0
    room.timeout_s = 120
    again = room.analyze(speech["zh"], RATE)
    assert room.status()["remote_frames"] == len(talk) and room.status()["deployment"] == "ok"
    assert all(again[i].patch is not None for i in talk)


def _post(url, body):
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    conn.request("POST", parts.path, body)
    r = conn.getresponse()
    out = r.status, r.read()
    conn.close()
    return out


def test_malformed_requests_get_a_clear_error(server):
    status, body = _post(server.url, b"garbage")
    assert status == 400 and "header" in json.loads(body)["error"]
    good = encode_request(["k"] * 2, np.zeros((2, 80, 16), np.float32))
    status, body = _post(server.url, good[:-7])
    assert status == 400 and "bytes" in json.loads(body)["error"]
    status, body = _post(server.url, encode_request(["k"] * 65, np.zeros((65, 80, 16), np.float32)))
    assert status == 413 and "65" in json.loads(body)["error"]
    status, body = _post(server.url, encode_request(["未知的脸"], np.zeros((1, 80, 16), np.float32)))
    assert status == 409 and json.loads(body)["missing"] == ["未知的脸"]
    nan = np.full((1, 80, 16), np.nan, np.float32)
    with pytest.raises(WireError, match="NaN"):
        decode_request(encode_request(["k"], nan))
    with pytest.raises(WireError, match="one key per frame"):
        encode_request(["k"], np.zeros((2, 80, 16), np.float32))


def test_a_profile_with_a_lipsync_url_gets_the_remote_renderer(avatar, checkpoint, tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/lipsync"
    remote = create_renderer("wav2lip", avatar, 25, checkpoint, "cpu", "float32", lipsync_url=url,
                             lipsync_fallback="local")
    assert isinstance(remote, RemoteWav2LipRenderer) and remote.local is not None and remote.local.name == "wav2lip"
    bare = create_renderer("wav2lip", avatar, 25, tmp_path / "missing.pth", lipsync_url=url, lipsync_fallback="local")
    assert isinstance(bare, RemoteWav2LipRenderer) and bare.local is None  # no weights here: the procedural mouth
    assert create_renderer("procedural", avatar, 25, lipsync_url=url).name == "procedural"


@pytest.mark.parametrize("flags, expected", [({"avx512f", "avx512_vnni"}, "float32"), ({"avx512f", "avx512_bf16"}, "bfloat16"),
                                             ({"amx_bf16"}, "bfloat16")])
def test_the_shared_model_uses_bf16_only_where_the_cpu_runs_it_natively(checkpoint, monkeypatch, flags, expected):
    """Emulated bf16 runs 3x slower than float32 (a Xeon without AVX512-BF16: 4.7 vs 14 frames/s), so a CPU
    deployment on such a machine must pick float32, as the local renderer does."""
    from avatars.wav2lip import backends

    monkeypatch.setattr(backends, "cpu_flags", lambda: flags)
    assert LipSyncModel(checkpoint, device="cpu", threads=1).precision == expected
