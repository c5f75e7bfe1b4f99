r"""String patterns: a small regex-like template language, compiled once and generated a column at a time.

Syntax: literal characters; ``\d`` (a digit), ``\w`` (a letter, digit or ``_``), classes such as
``[A-Z0-9_]``; ``{n}``, ``{m,n}`` and ``?`` repeat the item before them; ``{{row}}`` is the 1-based row
number and ``{{row:8}}`` the same padded with zeros to 8 digits. A backslash makes any other
character literal. ``( ) | * + ^ $`` must be escaped: groups, alternation and unbounded repeats are
not supported, and silently treating them as text would surprise anyone who knows regular expressions.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from northstar.datasets.generation.arrays import strings

MAX_REPEAT = 100
MAX_LENGTH = 1000  # bytes of the longest string a pattern can produce (row numbers aside)
UNIQUE_DOMAIN_LIMIT = 2**62
CLASSES = {"d": string.digits, "w": string.ascii_letters + string.digits + "_"}
RESERVED = "()|*+^$"


@dataclass(frozen=True)
class Piece:
    """One item repeated ``low``..``high`` times: a literal (``text``) or a choice among ``alphabet``."""

    text: bytes = b""
    alphabet: bytes = b""
    low: int = 1
    high: int = 1

    @property
    def width(self) -> int:
        return (1 if self.alphabet else len(self.text)) * self.high


@dataclass(frozen=True)
class RowNumber:
    width: int = 1


@dataclass(frozen=True)
class Pattern:
    pieces: tuple[Piece | RowNumber, ...]

    @property
    def can_be_unique(self) -> bool:
        """Fixed repeat counts, so distinct choices always give distinct strings."""
        return all(isinstance(piece, RowNumber) or piece.low == piece.high for piece in self.pieces)

    @property
    def capacity(self) -> int | None:
        """How many distinct strings the pattern can make (None: unbounded, thanks to a row number)."""
        if any(isinstance(piece, RowNumber) for piece in self.pieces):
            return None
        radices = [
            len(piece.alphabet)
            for piece in self.pieces
            if isinstance(piece, Piece) and piece.alphabet
            for _ in range(piece.high)
        ]
        return math.prod(radices)

    def _key_positions(self) -> list[tuple[int, bytes]]:
        """(matrix column, alphabet) of the rightmost choice positions that together spell a unique key."""
        positions: list[tuple[int, bytes]] = []
        offset = 0
        for piece in self.pieces:
            assert isinstance(piece, Piece), "patterns with a row number are unique already"
            if piece.alphabet:
                positions.extend((offset + position, piece.alphabet) for position in range(piece.high))
            offset += piece.width
        chosen: list[tuple[int, bytes]] = []
        domain = 1
        for column, alphabet in reversed(positions):
            if domain * len(alphabet) > UNIQUE_DOMAIN_LIMIT:
                break
            domain *= len(alphabet)
            chosen.append((column, alphabet))
        return chosen

    def unique_domain(self) -> int:
        """Size of the key space spelled over the last choice positions to make rows distinct."""
        return math.prod(len(alphabet) for _, alphabet in self._key_positions())

    def render(
        self, rng: np.random.Generator, rows: NDArray[np.int64], keys: NDArray[np.uint64] | None = None
    ) -> pa.StringArray:
        """Strings for the given 0-based row numbers; ``keys`` (distinct, < unique_domain) make them distinct."""
        count = len(rows)
        blocks: list[NDArray[np.uint8]] = []
        keeps: list[NDArray[np.bool_] | None] = []
        keep: NDArray[np.bool_] | None
        for piece in self.pieces:
            if isinstance(piece, RowNumber):
                block, keep = _row_digits(rows + 1, piece.width)
            elif piece.alphabet:
                alphabet = np.frombuffer(piece.alphabet, dtype=np.uint8)
                block = alphabet[rng.integers(0, len(alphabet), (count, piece.high), dtype=np.int32)]
                keep = _repeat_mask(rng, count, piece, 1)
            else:
                block = np.broadcast_to(
                    np.frombuffer(piece.text * piece.high, dtype=np.uint8), (count, len(piece.text) * piece.high)
                )
                keep = _repeat_mask(rng, count, piece, len(piece.text))
            blocks.append(block)
            keeps.append(keep)
        matrix = np.concatenate(blocks, axis=1) if blocks else np.zeros((count, 0), dtype=np.uint8)
        if keys is not None:
            self._write_keys(matrix, keys)
        if all(keep is None for keep in keeps):
            return strings(matrix)
        mask = np.concatenate(
            [
                np.ones(block.shape, dtype=np.bool_) if keep is None else keep
                for block, keep in zip(blocks, keeps, strict=True)
            ],
            axis=1,
        )
        return strings(matrix, mask)

    def _write_keys(self, matrix: NDArray[np.uint8], keys: NDArray[np.uint64]) -> None:
        """Spell each key in mixed radix over the key positions, least significant digit rightmost."""
        remaining = keys.copy()
        for column, alphabet in self._key_positions():
            radix = np.uint64(len(alphabet))
            matrix[:, column] = np.frombuffer(alphabet, dtype=np.uint8)[(remaining % radix).astype(np.intp)]
            remaining //= radix


def _repeat_mask(rng: np.random.Generator, count: int, piece: Piece, unit: int) -> NDArray[np.bool_] | None:
    if piece.low == piece.high:
        return None
    repeats = rng.integers(piece.low, piece.high + 1, count, dtype=np.int32)
    position = np.arange(piece.high * unit, dtype=np.int32) // unit
    return position[None, :] < repeats[:, None]


def _row_digits(numbers: NDArray[np.int64], pad: int) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
    """Decimal digits of each number, right-aligned in a matrix, with leading zeros kept up to ``pad``."""
    width = max(pad, len(str(int(numbers.max()))) if len(numbers) else 1)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    digits = ((numbers[:, None] // powers[None, :]) % 10).astype(np.uint8) + ord("0")
    significant = np.ones(len(numbers), dtype=np.int32)
    for exponent in range(1, width):
        significant += numbers >= 10**exponent
    shown = np.maximum(significant, pad)
    keep = np.arange(width, dtype=np.int32)[None, :] >= (width - shown)[:, None]
    return digits, keep


@lru_cache(maxsize=256)
def compile_pattern(source: str) -> Pattern:
    """Parse ``source``; a ValueError names the position and the problem."""
    pieces: list[Piece | RowNumber] = []
    position = 0
    repeatable = False  # the last item can take a repeat (and has none yet)
    while position < len(source):
        char = source[position]
        if source.startswith("{{", position):
            end = source.find("}}", position)
            pieces.append(_row_number(source[position + 2 : end] if end >= 0 else "", position))
            position, repeatable = end + 2, False
            continue
        if char in "{?":
            if not repeatable:
                raise ValueError(f"repeat at position {position} has nothing to repeat")
            low, high, position = _repeat(source, position)
            last = pieces[-1]
            assert isinstance(last, Piece)
            pieces[-1] = Piece(last.text, last.alphabet, low, high)
            repeatable = False
            continue
        if char == "[":
            alphabet, position = _char_class(source, position)
            pieces.append(Piece(alphabet=alphabet))
        elif char == "\\":
            if position + 1 >= len(source):
                raise ValueError("pattern ends with an unfinished escape (\\)")
            escaped = source[position + 1]
            if escaped in CLASSES:
                pieces.append(Piece(alphabet=CLASSES[escaped].encode()))
            elif escaped.isalnum():
                raise ValueError(f"unknown escape \\{escaped} at position {position} (use \\d or \\w)")
            else:
                pieces.append(Piece(text=escaped.encode()))
            position += 2
        elif char in RESERVED or char in "]}":
            raise ValueError(f"'{char}' at position {position} is not supported; write \\{char} for the character")
        else:
            pieces.append(Piece(text=char.encode()))
            position += 1
        repeatable = True
    pattern = Pattern(tuple(_merge_literals(pieces)))
    if sum(piece.width for piece in pattern.pieces if isinstance(piece, Piece)) > MAX_LENGTH:
        raise ValueError(f"pattern makes strings longer than {MAX_LENGTH} bytes")
    return pattern


def _row_number(inside: str, position: int) -> RowNumber:
    name, _, pad = inside.partition(":")
    if name != "row" or (pad and not (pad.isdigit() and 1 <= int(pad) <= 20)):
        raise ValueError(f"at position {position}: only {{{{row}}}} and {{{{row:N}}}} (N from 1 to 20) are supported")
    return RowNumber(int(pad) if pad else 1)


def _repeat(source: str, position: int) -> tuple[int, int, int]:
    if source[position] == "?":
        return 0, 1, position + 1
    end = source.find("}", position)
    low_text, comma, high_text = source[position + 1 : end].partition(",") if end >= 0 else ("", "", "")
    if not low_text.isdigit() or (comma and not high_text.isdigit()):
        raise ValueError(f"repeat at position {position} must be {{n}} or {{m,n}}")
    low = int(low_text)
    high = int(high_text) if comma else low
    if not low <= high <= MAX_REPEAT:
        raise ValueError(f"repeat at position {position} must have m <= n <= {MAX_REPEAT}")
    return low, high, end + 1


def _char_class(source: str, position: int) -> tuple[bytes, int]:
    chars: list[str] = []
    index = position + 1
    while index < len(source) and source[index] != "]":
        char = source[index]
        if char == "\\" and index + 1 < len(source):
            escaped = source[index + 1]
            chars.extend(CLASSES.get(escaped, escaped))
            index += 2
            continue
        if index + 2 < len(source) and source[index + 1] == "-" and source[index + 2] != "]":
            last = source[index + 2]
            if last < char:
                raise ValueError(f"range {char}-{last} at position {index} is reversed")
            chars.extend(chr(code) for code in range(ord(char), ord(last) + 1))
            index += 3
            continue
        chars.append(char)
        index += 1
    if index >= len(source):
        raise ValueError(f"class opened at position {position} is not closed with ]")
    alphabet = "".join(dict.fromkeys(chars))
    if not alphabet:
        raise ValueError(f"class at position {position} is empty")
    if not alphabet.isascii() or not alphabet.isprintable():
        raise ValueError(f"class at position {position} may hold printable ASCII characters only")
    return alphabet.encode(), index + 1


def _merge_literals(pieces: list[Piece | RowNumber]) -> list[Piece | RowNumber]:
    """Adjacent single literals become one piece: fewer, wider blocks to generate."""
    merged: list[Piece | RowNumber] = []
    for piece in pieces:
        previous = merged[-1] if merged else None
        if (
            isinstance(piece, Piece)
            and isinstance(previous, Piece)
            and not piece.alphabet
            and not previous.alphabet
            and piece.low == piece.high == previous.low == previous.high == 1
        ):
            merged[-1] = Piece(text=previous.text + piece.text)
        else:
            merged.append(piece)
    return merged
