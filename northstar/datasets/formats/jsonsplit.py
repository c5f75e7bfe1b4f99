"""Stream a JSON array as NDJSON: one element per line, chunk by chunk, with numpy instead of a tokenizer.

The only bytes that matter are quotes (to know what is inside a string), brackets (depth) and the commas
between top-level elements. Finding them is a handful of vectorised passes over each chunk; the state carried
from one chunk to the next is three numbers. Memory is one chunk, whatever the size of the array.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import numpy.typing as npt

from northstar.datasets.formats.errors import MalformedFileError

_QUOTE, _BACKSLASH, _COMMA, _NEWLINE, _RETURN, _SPACE = 0x22, 0x5C, 0x2C, 0x0A, 0x0D, 0x20
_OPENERS = (0x5B, 0x7B)  # [ {
_CLOSERS = (0x5D, 0x7D)  # ] }
_STRUCTURAL = np.zeros(256, dtype=np.bool_)
_STRUCTURAL[[*_OPENERS, *_CLOSERS, _COMMA, _NEWLINE, _RETURN]] = True
_WHITESPACE = np.zeros(256, dtype=np.bool_)
_WHITESPACE[[_SPACE, _NEWLINE, _RETURN, 0x09]] = True
_DEPTH_STEP = np.zeros(256, dtype=np.int64)
_DEPTH_STEP[list(_OPENERS)] = 1
_DEPTH_STEP[list(_CLOSERS)] = -1
_RAW_NEWLINE_IN_STRING = 0x01  # keeps an (invalid) raw newline inside a string on one line, so it fails alone


class JsonArraySplitter:
    """Feed chunks of a JSON array; get NDJSON bytes back. ``finish`` checks the array was closed."""

    def __init__(self) -> None:
        self.in_string = False
        self.trailing_backslashes = 0  # at the end of the previous chunk, for a quote at the start of this one
        self.depth = 0
        self.started = False
        self.finished = False

    def feed(self, chunk: bytes) -> bytes:
        data = np.frombuffer(chunk, dtype=np.uint8)
        if not len(data):
            return b""
        out = data.copy()
        quotes = self._unescaped_quotes(data)
        positions = np.flatnonzero(_STRUCTURAL[data])
        quotes_before = np.searchsorted(quotes, positions)
        inside = (quotes_before + int(self.in_string)) % 2 == 1
        newline_inside = positions[inside & ((data[positions] == _NEWLINE) | (data[positions] == _RETURN))]
        out[newline_inside] = _RAW_NEWLINE_IN_STRING
        outside = positions[~inside]
        self._split(data, out, outside)
        self.in_string = (int(self.in_string) + len(quotes)) % 2 == 1
        return out.tobytes()

    def _unescaped_quotes(self, data: npt.NDArray[np.uint8]) -> npt.NDArray[np.intp]:
        """Positions of quotes not preceded by an odd run of backslashes."""
        size = len(data)
        is_backslash = data == _BACKSLASH
        indexes = np.arange(size)
        last_other = np.maximum.accumulate(np.where(is_backslash, -1, indexes))
        quotes = np.flatnonzero(data == _QUOTE)
        before = quotes - 1
        safe_before = np.maximum(before, 0)
        run = np.where(before >= 0, before - last_other[safe_before], 0)
        reaches_start = (before < 0) | (last_other[safe_before] == -1)
        run = run + np.where(reaches_start, self.trailing_backslashes, 0)
        trailing = size - 1 - int(last_other[-1])
        self.trailing_backslashes = trailing + (self.trailing_backslashes if trailing == size else 0)
        result: npt.NDArray[np.intp] = quotes[run % 2 == 0]
        return result

    def _split(self, data: npt.NDArray[np.uint8], out: npt.NDArray[np.uint8], outside: npt.NDArray[np.intp]) -> None:
        """Outer brackets become spaces, top-level commas newlines, other newlines spaces."""
        if self.finished:
            self._only_whitespace_after_end(data, 0)
            return
        values = data[outside]
        out[outside[(values == _NEWLINE) | (values == _RETURN)]] = _SPACE
        steps = _DEPTH_STEP[values]
        after = self.depth + np.cumsum(steps)
        before = after - steps
        if len(after) and int(after.min()) < 0:
            raise MalformedFileError("The JSON array has more closing brackets than opening ones")
        if not self.started:
            content = np.flatnonzero(~_WHITESPACE[data])
            if not len(content):
                return
            if data[content[0]] != _OPENERS[0]:
                raise MalformedFileError("The JSON file does not start with an array")
            out[content[0]] = _SPACE
            self.started = True
        out[outside[(values == _COMMA) & (before == 1)]] = _NEWLINE
        closed = np.flatnonzero((after == 0) & (steps == -1))
        if len(closed):
            end = int(outside[closed[0]])
            out[end] = _SPACE
            self.finished = True
            self._only_whitespace_after_end(data, end + 1)
        if len(after):
            self.depth = int(after[-1])

    def _only_whitespace_after_end(self, data: npt.NDArray[np.uint8], start: int) -> None:
        if not _WHITESPACE[data[start:]].all():
            raise MalformedFileError("There is more data after the end of the JSON array")

    def finish(self) -> None:
        if not self.finished:
            raise MalformedFileError("The JSON array is not closed: the file looks truncated")


def split_json_array(chunks: Iterable[bytes]) -> Iterator[bytes]:
    splitter = JsonArraySplitter()
    for chunk in chunks:
        yield splitter.feed(chunk)
    splitter.finish()
