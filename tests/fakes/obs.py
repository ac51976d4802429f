"""A fake OBS Studio speaking obs-websocket v5: the real authentication handshake and the requests
the bridge uses, recorded for the test. Scenes hold sources; the program scene can be switched."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any

import websockets


class FakeObs:
    def __init__(self, password: str, scenes: dict[str, list[str]] | None = None) -> None:
        self.password = password
        self.salt, self.challenge = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        self.scenes = scenes or {"Live": ["Camera", "Subtitle", "Promo"], "BRB": ["Be right back"]}
        self.program = next(iter(self.scenes))
        self.enabled: dict[tuple[str, str], bool] = {(s, src): True for s, srcs in self.scenes.items() for src in srcs}
        self.texts: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []
        self.identified = 0
        self.rejected = 0
        self.server: Any = None
        self.sockets: set[Any] = set()
        self.url = ""

    async def __aenter__(self) -> FakeObs:
        self.server = await websockets.serve(self._handle, "127.0.0.1", 0, subprotocols=["obswebsocket.json"])
        self.url = f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        for ws in list(self.sockets):
            await ws.close()
        await self.server.wait_closed()

    async def drop_clients(self) -> None:
        """OBS restarted: every connection closes."""
        for ws in list(self.sockets):
            await ws.close(1001, "going away")

    def expected_auth(self) -> str:
        secret = base64.b64encode(hashlib.sha256((self.password + self.salt).encode()).digest()).decode()
        return base64.b64encode(hashlib.sha256((secret + self.challenge).encode()).digest()).decode()

    async def _handle(self, ws: Any) -> None:
        self.sockets.add(ws)
        try:
            await ws.send(json.dumps({"op": 0, "d": {"obsWebSocketVersion": "5.5.0", "rpcVersion": 1,
                                                     "authentication": {"challenge": self.challenge,
                                                                        "salt": self.salt}}}))
            identify = json.loads(await ws.recv())
            assert identify["op"] == 1 and identify["d"]["rpcVersion"] == 1
            if identify["d"].get("authentication") != self.expected_auth():
                self.rejected += 1
                await ws.close(4009, "Authentication failed.")
                return
            self.identified += 1
            await ws.send(json.dumps({"op": 2, "d": {"negotiatedRpcVersion": 1}}))
            async for raw in ws:
                msg = json.loads(raw)
                if msg["op"] == 6:
                    await ws.send(json.dumps({"op": 7, "d": self._answer(msg["d"])}))
        except websockets.ConnectionClosed:
            pass
        finally:
            self.sockets.discard(ws)

    def _answer(self, req: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(req)
        kind, data = req["requestType"], req.get("requestData") or {}
        out: dict[str, Any] = {"requestType": kind, "requestId": req["requestId"]}
        ok, response = True, {}
        if kind == "GetCurrentProgramScene":
            response = {"sceneName": self.program, "currentProgramSceneName": self.program}
        elif kind == "SetCurrentProgramScene":
            ok = data.get("sceneName") in self.scenes
            if ok:
                self.program = data["sceneName"]
        elif kind == "SetInputSettings":
            self.texts[data["inputName"]] = data["inputSettings"]["text"]
        elif kind == "GetSceneItemId":
            srcs = self.scenes.get(data.get("sceneName"), [])
            ok = data.get("sourceName") in srcs
            response = {"sceneItemId": srcs.index(data["sourceName"]) + 1} if ok else {}
        elif kind == "SetSceneItemEnabled":
            srcs = self.scenes[data["sceneName"]]
            self.enabled[(data["sceneName"], srcs[data["sceneItemId"] - 1])] = data["sceneItemEnabled"]
        else:
            ok = False
        out["requestStatus"] = {"result": ok, "code": 100 if ok else 600,
                                **({} if ok else {"comment": f"No source was found by the name of {data}"})}
        if response:
            out["responseData"] = response
        return out
