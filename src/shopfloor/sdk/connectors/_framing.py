"""Framing of a raw TCP byte stream into messages: pure encode and decode, no I/O.

line                  each frame ends with "\\n" (a "\\r" before it is dropped)
delimiter:HEX         each frame ends with the bytes HEX (`delimiter:03` is ETX)
length-prefixed[:N]   each frame starts with its length, N bytes big-endian (1, 2 or
                      4; 4 by default), not counting the prefix
fixed:N               every frame is exactly N bytes
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FrameDecoder", "Framing", "FramingError"]

DEFAULT_MAX_FRAME = 65536
_PREFIX_SIZES = (1, 2, 4)


class FramingError(ValueError):
    """A framing spec that is none, a payload it cannot carry, or a frame too large."""


@dataclass(frozen=True, slots=True)
class Framing:
    kind: str  # line, delimiter, length-prefixed, fixed
    delimiter: bytes = b""
    size: int = 0  # the prefix's bytes (length-prefixed) or the frame's (fixed)
    max_frame: int = DEFAULT_MAX_FRAME

    @classmethod
    def parse(cls, spec: str, *, max_frame: int = DEFAULT_MAX_FRAME) -> Framing:
        name, _, argument = spec.partition(":")
        if name == "line" and not argument:
            return cls("line", delimiter=b"\n", max_frame=max_frame)
        if name == "delimiter":
            try:
                delimiter = bytes.fromhex(argument)
            except ValueError:
                delimiter = b""
            if not delimiter:
                raise FramingError(f"framing {spec!r}: a delimiter is given in hex, e.g. 0d0a")
            return cls("delimiter", delimiter=delimiter, max_frame=max_frame)
        if name == "length-prefixed":
            size = _number(spec, argument or "4")
            if size not in _PREFIX_SIZES:
                raise FramingError(f"framing {spec!r}: the prefix is 1, 2 or 4 bytes")
            return cls("length-prefixed", size=size, max_frame=max_frame)
        if name == "fixed":
            size = _number(spec, argument)
            if not 0 < size <= max_frame:
                raise FramingError(f"framing {spec!r}: a frame size is 1 to {max_frame} bytes")
            return cls("fixed", size=size, max_frame=max_frame)
        raise FramingError(
            f"framing {spec!r} is none of line, delimiter:HEX, length-prefixed[:N], fixed:N"
        )

    def encode(self, payload: bytes) -> bytes:
        """The frame carrying `payload`; `FramingError` when the framing cannot carry it."""
        if len(payload) > self.max_frame:
            raise FramingError(f"a frame of {len(payload)} bytes is over {self.max_frame}")
        if self.kind in ("line", "delimiter"):
            if self.delimiter in payload:
                raise FramingError(f"the payload holds the frame delimiter {self.delimiter!r}")
            return payload + self.delimiter
        if self.kind == "fixed":
            if len(payload) != self.size:
                raise FramingError(f"a fixed frame has {self.size} bytes, not {len(payload)}")
            return payload
        if len(payload) >= 1 << (8 * self.size):
            raise FramingError(f"{len(payload)} bytes do not fit a {self.size}-byte length")
        return len(payload).to_bytes(self.size, "big") + payload


class FrameDecoder:
    """Bytes in as they arrive, whole frames out."""

    def __init__(self, framing: Framing) -> None:
        self.framing = framing
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """The frames `data` completes; `FramingError` once a frame outgrows the limit."""
        self._buffer += data
        frames: list[bytes] = []
        while (frame := self._next()) is not None:
            frames.append(frame)
        return frames

    def _next(self) -> bytes | None:
        framing, buffer = self.framing, self._buffer
        if framing.kind in ("line", "delimiter"):
            end = buffer.find(framing.delimiter)
            if end < 0:
                self._check(len(buffer))
                return None
            frame = bytes(buffer[:end])
            del buffer[: end + len(framing.delimiter)]
            if framing.kind == "line" and frame.endswith(b"\r"):
                frame = frame[:-1]
            return frame
        if framing.kind == "fixed":
            if len(buffer) < framing.size:
                return None
            frame = bytes(buffer[: framing.size])
            del buffer[: framing.size]
            return frame
        if len(buffer) < framing.size:
            return None
        length = int.from_bytes(buffer[: framing.size], "big")
        self._check(length)
        if len(buffer) < framing.size + length:
            return None
        frame = bytes(buffer[framing.size : framing.size + length])
        del buffer[: framing.size + length]
        return frame

    def _check(self, length: int) -> None:
        if length > self.framing.max_frame:
            raise FramingError(f"a frame of over {self.framing.max_frame} bytes")


def _number(spec: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise FramingError(f"framing {spec!r}: {text!r} is not a number") from None
