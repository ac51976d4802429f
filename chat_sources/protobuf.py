"""A minimal protocol-buffers wire codec: enough to read Douyin and Bilibili frames without generated
code or the protobuf runtime. Unknown fields are kept and ignored; malformed input raises
``ProtobufError`` (never anything else), so a bad frame can be skipped with one log line.
"""

from __future__ import annotations

from collections.abc import Iterator


class ProtobufError(ValueError):
    pass


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ProtobufError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint longer than 10 bytes")


def iter_fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    pos, n = 0, len(buf)
    while pos < n:
        key, pos = read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise ProtobufError("field number 0")
        if wire == 0:
            value, pos = read_varint(buf, pos)
            yield field, wire, value
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            if pos + length > n:
                raise ProtobufError("truncated length-delimited field")
            yield field, wire, bytes(buf[pos:pos + length])
            pos += length
        elif wire == 1 or wire == 5:
            size = 8 if wire == 1 else 4
            if pos + size > n:
                raise ProtobufError("truncated fixed field")
            yield field, wire, int.from_bytes(buf[pos:pos + size], "little")
            pos += size
        else:
            raise ProtobufError(f"unsupported wire type {wire}")


class Msg:
    """A parsed message: field number -> values, with typed accessors that default when absent."""

    __slots__ = ("fields",)

    def __init__(self, buf: bytes) -> None:
        self.fields: dict[int, list[int | bytes]] = {}
        for field, _, value in iter_fields(buf):
            self.fields.setdefault(field, []).append(value)

    def num(self, field: int, default: int = 0) -> int:
        values = self.fields.get(field)
        if not values:
            return default
        v = values[-1]
        if isinstance(v, bytes):
            raise ProtobufError(f"field {field}: expected a number")
        return v

    def sint64(self, field: int) -> int:
        v = self.num(field)
        return v - (1 << 64) if v >= 1 << 63 else v

    def flag(self, field: int) -> bool:
        return bool(self.num(field))

    def blob(self, field: int) -> bytes:
        values = self.fields.get(field)
        if not values:
            return b""
        v = values[-1]
        if not isinstance(v, bytes):
            raise ProtobufError(f"field {field}: expected bytes")
        return v

    def text(self, field: int) -> str:
        try:
            return self.blob(field).decode("utf-8")
        except UnicodeDecodeError:
            raise ProtobufError(f"field {field}: not UTF-8") from None

    def label(self, field: int) -> str:
        """A field some senders encode as a string and others as a number, as text."""
        values = self.fields.get(field)
        if not values:
            return ""
        v = values[-1]
        return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)

    def msg(self, field: int) -> Msg:
        return Msg(self.blob(field))

    def msgs(self, field: int) -> list[Msg]:
        out = []
        for v in self.fields.get(field, []):
            if not isinstance(v, bytes):
                raise ProtobufError(f"field {field}: expected a message")
            out.append(Msg(v))
        return out

    def has(self, field: int) -> bool:
        return field in self.fields


def varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(field: int, value: int) -> bytes:
    return varint(field << 3) + varint(value)


def field_bytes(field: int, value: bytes | str) -> bytes:
    data = value.encode("utf-8") if isinstance(value, str) else value
    return varint((field << 3) | 2) + varint(len(data)) + data


def message(*parts: bytes) -> bytes:
    return b"".join(parts)
