"""The shared lip-sync wire format: what a room sends to the inference deployment and gets back.

One HTTP POST per batch of video frames. The body is a one-line JSON header, a newline, then raw
little-endian arrays: the frames' mel windows (float32, n x 80 x 16) followed by any faces the
room sends with this request (uint8, 6 x 96 x 96 each: the masked and the reference half of
Wav2Lip's face input, exactly as the renderer builds it). Each frame names its face by a key; a
replica caches the face encoder's features per key, so a portrait's face crosses the network once
per replica, not once per frame. A replica that does not know a key answers 409 with the missing
keys, and the room resends with the faces included.

The answer is the mouth patches, uint8 n x 96 x 96 x 3, raw. Pasting stays in the room: a patch is
27 KB where a composited 720p frame would be 2.7 MB, and the room has the base frame already.

Raw arrays rather than pickles or npz: nothing from the network is ever unpickled, and the sizes
are checked against the header before a byte is interpreted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

MEL_SHAPE = (80, 16)
FACE_SHAPE = (6, 96, 96)
PATCH_SHAPE = (96, 96, 3)
MAX_FRAMES = 512
MAX_FACES = 64
MAX_HEADER = 64 * 1024
VERSION = 1


class WireError(ValueError):
    """A request or answer that does not follow the format; the message says what is wrong."""


@dataclass
class LipSyncRequest:
    keys: list[str]
    """One face key per frame."""
    mel: np.ndarray
    """(n, 80, 16) float32."""
    faces: dict[str, np.ndarray]
    """Faces sent with this request: key -> (6, 96, 96) uint8."""


def face_key(face: np.ndarray) -> str:
    """A stable key for a face input: the same picture gives the same key in every room and run."""
    return hashlib.blake2b(np.ascontiguousarray(face).tobytes(), digest_size=12).hexdigest()


def encode_request(keys: list[str], mel: np.ndarray, faces: dict[str, np.ndarray] | None = None) -> bytes:
    faces = faces or {}
    mel = np.ascontiguousarray(mel, dtype="<f4")
    if mel.ndim != 3 or mel.shape[1:] != MEL_SHAPE or mel.shape[0] != len(keys):
        raise WireError(f"mel windows must be (n, 80, 16) with one key per frame, got {mel.shape} for {len(keys)} keys")
    header = {"v": VERSION, "keys": keys, "faces": list(faces)}
    parts = [json.dumps(header, separators=(",", ":")).encode(), b"\n", mel.tobytes()]
    for key in faces:
        face = np.ascontiguousarray(faces[key], dtype=np.uint8)
        if face.shape != FACE_SHAPE:
            raise WireError(f"face {key}: expected shape {FACE_SHAPE}, got {face.shape}")
        parts.append(face.tobytes())
    return b"".join(parts)


def _header(body: bytes) -> tuple[dict, int]:
    end = body.find(b"\n", 0, MAX_HEADER)
    if end < 0:
        raise WireError("no header line (a JSON object, then a newline, then the arrays)")
    try:
        header = json.loads(body[:end])
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WireError(f"header is not JSON: {e}") from None
    if not isinstance(header, dict) or header.get("v") != VERSION:
        raise WireError(f"header must be an object with \"v\": {VERSION}")
    return header, end + 1


def _key_list(header: dict, field: str, limit: int) -> list[str]:
    value = header.get(field)
    if not isinstance(value, list) or not all(isinstance(k, str) and 0 < len(k) <= 64 for k in value):
        raise WireError(f"{field}: expected a list of face keys (strings of 1-64 characters)")
    if len(value) > limit:
        raise WireError(f"{field}: at most {limit} per request, got {len(value)}")
    return value


def decode_request(body: bytes) -> LipSyncRequest:
    header, offset = _header(body)
    keys = _key_list(header, "keys", MAX_FRAMES)
    face_keys = _key_list(header, "faces", MAX_FACES)
    if not keys:
        raise WireError("keys: at least one frame is needed")
    n = len(keys)
    mel_bytes = n * MEL_SHAPE[0] * MEL_SHAPE[1] * 4
    face_bytes = FACE_SHAPE[0] * FACE_SHAPE[1] * FACE_SHAPE[2]
    expected = offset + mel_bytes + len(face_keys) * face_bytes
    if len(body) != expected:
        raise WireError(f"body is {len(body)} bytes; {n} mel windows and {len(face_keys)} faces need {expected}")
    mel = np.frombuffer(body, dtype="<f4", count=n * MEL_SHAPE[0] * MEL_SHAPE[1], offset=offset)
    mel = mel.reshape(n, *MEL_SHAPE).astype(np.float32)
    if not np.isfinite(mel).all():
        raise WireError("mel windows contain NaN or infinity")
    faces = {}
    at = offset + mel_bytes
    for key in face_keys:
        faces[key] = np.frombuffer(body, dtype=np.uint8, count=face_bytes, offset=at).reshape(FACE_SHAPE).copy()
        at += face_bytes
    return LipSyncRequest(keys, mel, faces)


def encode_patches(patches: np.ndarray) -> bytes:
    return np.ascontiguousarray(patches, dtype=np.uint8).tobytes()


def decode_patches(body: bytes, n: int) -> np.ndarray:
    size = n * PATCH_SHAPE[0] * PATCH_SHAPE[1] * PATCH_SHAPE[2]
    if len(body) != size:
        raise WireError(f"expected {n} mouth patches ({size} bytes), got {len(body)} bytes")
    return np.frombuffer(body, dtype=np.uint8).reshape(n, *PATCH_SHAPE)


def encode_missing(keys: list[str]) -> bytes:
    return json.dumps({"ok": False, "error": "unknown face keys: send the faces", "missing": keys}).encode()


def decode_missing(body: bytes) -> list[str]:
    try:
        missing = json.loads(body).get("missing", [])
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise WireError("409 answer without a JSON list of missing keys") from None
    if not isinstance(missing, list):
        raise WireError("409 answer: 'missing' is not a list")
    return [str(k) for k in missing]
