"""A document as data: paragraphs with their lists, metrics, charts and tables. A module that writes one (the
coach's reports, DevBizOps' investor dashboard) builds a ``Document``; the reports module renders it as HTML and
PDF. ``as_json`` and ``from_json`` carry one between them (through a queued job, say) without either importing the
other."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import TypeAdapter


@dataclass(frozen=True)
class Chart:
    """One series month by month: labels ("Mar 2026") and values in ``unit`` (a currency code, "hours", "%"),
    already in the unit's major form (dollars, not cents); None where a month has no value."""

    title: str
    labels: list[str]
    values: list[Decimal | None]
    unit: str
    decimals: int = 0  # places on the axis


@dataclass(frozen=True)
class Table:
    title: str
    header: tuple[str, ...]
    rows: list[tuple[str, ...]]


@dataclass(frozen=True)
class Document:
    title: str
    subtitle: str
    blocks: list[tuple[str, list[str]]]  # paragraphs: their sentences and their list items
    metrics: list[tuple[str, str]] = field(default_factory=list)  # a metric's name and what the facts say of it
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    footer: str = ""

    def text(self) -> list[str]:
        """Everything a reader takes as a statement (paragraphs, list items, metrics, table cells): what a number
        check reads."""
        said = [text for sentence, listed in self.blocks for text in (sentence, *listed)]
        said += [text for _, text in self.metrics]
        said += [cell for table in self.tables for row in table.rows for cell in row]
        return said


_DOCUMENT = TypeAdapter(Document)


def as_json(document: Document) -> dict[str, Any]:
    found: dict[str, Any] = _DOCUMENT.dump_python(document, mode="json")
    return found


def from_json(data: dict[str, Any]) -> Document:
    return _DOCUMENT.validate_python(data)


def blocks_of(paragraphs: tuple[str, ...] | list[str]) -> list[tuple[str, list[str]]]:
    """Each paragraph as its sentences and its list (the lines starting with "- ", as the writers list items)."""
    blocks = []
    for paragraph in paragraphs:
        lines = paragraph.split("\n")
        listed = [line[2:] for line in lines if line.startswith("- ")]
        blocks.append((" ".join(line for line in lines if not line.startswith("- ")), listed))
    return blocks
