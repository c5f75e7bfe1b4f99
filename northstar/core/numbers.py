"""Numbers as generated texts print them, and the check that every number in a text is one of the facts'.

Every text a writer or a language model makes (the coach's reports, the investor dashboard) is built from facts:
sentences whose numbers are written with these formatters. The numbers a text may use are exactly the tokens found
in its facts: the same value *and* the same rounding. A number is read with what it measures (money with its
currency, a percentage, a multiple, or a plain count, year or day), so a true count cannot pass for a percentage."""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal

# a number (thousands separated by commas, optional decimals) and what follows it: %, a multiplication sign (or x),
# or a currency code
_NUMBER = re.compile(
    r"(?P<symbol>[$€£¥])?(?<![\w.])(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?P<unit>\s?%|\s?\u00d7|x\b|\s[A-Z]{3}\b)?"
)
Token = tuple[str, str]  # (what it measures, the number without separators)


def money(minor: int, currency: str, exponent: int) -> str:
    """Minor units in their currency, every minor digit shown: 1234550 USD → "12,345.50 USD"."""
    return f"{Decimal(abs(minor)).scaleb(-exponent):,.{exponent}f} {currency}"


def percent(value: float) -> str:
    return f"{abs(value):,.1f} %"


def count(value: int) -> str:
    return f"{abs(value):,}"


def decimal(value: Decimal | float, places: int) -> str:
    """A measured quantity (hours, deployments a day) at a fixed number of places: 26.5 → "26.5" at 1."""
    return f"{abs(Decimal(str(value))):,.{places}f}"


def tokens(text: str) -> list[Token]:
    """The numbers of a text with what each measures. A currency symbol before a number makes it money in some
    currency (``money:*``), matched against every amount of the facts."""
    found = []
    for match in _NUMBER.finditer(text):
        number = match["number"].replace(",", "")
        unit = (match["unit"] or "").strip()
        if unit == "%":
            kind = "percent"
        elif unit in ("\u00d7", "x"):
            kind = "times"
        elif unit:
            kind = f"money:{unit}"
        elif match["symbol"]:
            kind = "money:*"
        else:
            kind = "plain"
        found.append((kind, number.lstrip("0") or "0" if "." not in number else number))
    return found


def unsupported(text: str, facts: Iterable[str]) -> list[str]:
    """The numbers of ``text`` that no fact states (empty: every number is backed), as they were written."""
    allowed = {token for fact in facts for token in tokens(fact)}
    amounts = {number for kind, number in allowed if kind.startswith("money:")}
    wrong = []
    for kind, number in tokens(text):
        backed = number in amounts if kind == "money:*" else (kind, number) in allowed
        if not backed:
            wrong.append(f"{number} ({kind})")
    return wrong
