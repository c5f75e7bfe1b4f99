"""Notification message templates and widget CSS: validated when saved, so nothing unsafe reaches a page.

Messages use ``{{ variable | filter:"argument" | filter }}``, e.g.
``{{firstName|default:"Someone"}} from {{city}} bought {{product}}``. ``{{custom.key}}`` is the event's value of
the organization's custom field ``key`` (plain text like every other value; empty when the event has none).
The output is plain text (the widget sets ``textContent``), so a template can never inject markup. ``timeAgo`` is
the one live variable: the widget writes it in the visitor's language and keeps it current, so it takes no filters.
CSS is parsed with tinycss2 and anything that could load, run or escape is refused: ``@import``, ``url()`` other
than ``https:`` images, ``expression()``, ``behavior``/``-moz-binding``, and any ``<`` (which could end a ``<style>``
element).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import tinycss2
from babel.numbers import format_decimal

VARIABLES = {
    "firstName": "the visitor's first name (anonymised by default)",
    "city": "the visitor's city",
    "country": "the visitor's country",
    "product": "the product of the event",
    "productUrl": "the product's page",
    "count": "how many (visitors now, purchases in the period)",
    "period": "the counter's period, e.g. 'today'",
    "timeAgo": "when it happened, e.g. '4 min ago'",
    "rating": "average rating, e.g. 4.8",
    "reviewCount": "number of reviews",
    "eventName": "the custom event's name",
}
SAMPLE = {
    "firstName": "Anna",
    "city": "Berlin",
    "country": "Germany",
    "product": "Trail Shoes",
    "productUrl": "https://shop.example.com/trail-shoes",
    "count": 23,
    "period": "today",
    "timeAgo": "4 min ago",
    "rating": 4.8,
    "reviewCount": 120,
    "eventName": "signup",
}
MAX_MESSAGE = 500
MAX_CSS = 20_000

_EXPRESSION = re.compile(r"\{\{(.*?)\}\}", re.S)
_FILTER = re.compile(r'^\s*([a-z]+)\s*(?::\s*(?:"([^"]*)"|(\d+)))?\s*$')
_PIPE = re.compile(r'\|(?=(?:[^"]*"[^"]*")*[^"]*$)')  # a | outside quotes
_VARIABLE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9]*|custom\.[a-z][a-z0-9_]{0,39})\s*$")
CUSTOM_PREFIX = "custom."


class TemplateError(ValueError):
    """A template or CSS problem, with the character position where it is."""


def _text(value: Any, locale: str) -> str:
    """Numbers as the site's language writes them (``1.234`` and ``4,8`` in German), booleans as true and false,
    everything else as it is."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format_decimal(value, locale=locale.replace("-", "_"))
    return str(value)


def _truncate(value: str, size: int) -> str:
    return value if len(value) <= size else value[: max(size - 1, 0)] + "…"


def _plural(value: str, forms: str) -> str:
    """``{{count|plural:"person is|people are"}}``: the first form for exactly one, the second otherwise."""
    singular, _, plural = forms.partition("|")
    return singular if value.replace(",", "") == "1" else (plural or singular)


FILTERS: dict[str, Callable[[str, str | int | None], str]] = {
    "default": lambda value, argument: value or str(argument or ""),
    "upper": lambda value, _: value.upper(),
    "lower": lambda value, _: value.lower(),
    "capitalize": lambda value, _: value[:1].upper() + value[1:],
    "truncate": lambda value, argument: _truncate(value, int(argument or 0)),
    "plural": lambda value, argument: _plural(value, str(argument or "")),
}
FILTER_ARGUMENTS: dict[str, tuple[type, str]] = {
    "default": (str, 'a quoted text, like default:"Someone"'),
    "truncate": (int, "a number, like truncate:20"),
    "plural": (str, 'two quoted forms, like plural:"review|reviews"'),
}
LIVE_VARIABLES = frozenset({"timeAgo"})


@dataclass(frozen=True)
class Placeholder:
    start: int
    end: int
    variable: str
    filters: tuple[tuple[str, str | int | None], ...]


def parse_message(message: str) -> list[Placeholder]:
    """Every ``{{…}}`` in the message; ``TemplateError`` names the first unknown variable or filter."""
    if len(message) > MAX_MESSAGE:
        raise TemplateError(f"a message is at most {MAX_MESSAGE} characters")
    if "{{" in _EXPRESSION.sub("", message) or "}}" in _EXPRESSION.sub("", message):
        raise TemplateError("unbalanced {{ or }}")
    placeholders = []
    for match in _EXPRESSION.finditer(message):
        head, *pipes = _PIPE.split(match.group(1))
        variable = _VARIABLE.match(head)
        if not variable or (variable.group(1) not in VARIABLES and not variable.group(1).startswith(CUSTOM_PREFIX)):
            known = ", ".join((*VARIABLES, "custom.<key>"))
            raise TemplateError(f"unknown variable {head.strip()!r} at character {match.start()}; known: {known}")
        filters = []
        for pipe in pipes:
            found = _FILTER.match(pipe)
            if not found or found.group(1) not in FILTERS:
                raise TemplateError(
                    f"unknown filter {pipe.strip()!r} at character {match.start()}; known: {', '.join(FILTERS)}"
                )
            name, text, digits = found.groups()
            wanted, described = FILTER_ARGUMENTS.get(name, (type(None), "no argument"))
            argument: str | int | None = text if text is not None else (int(digits) if digits else None)
            if not isinstance(argument, wanted):
                raise TemplateError(f"filter {name!r} at character {match.start()} takes {described}")
            filters.append((name, argument))
        if filters and variable.group(1) in LIVE_VARIABLES:
            raise TemplateError(
                f"{variable.group(1)} at character {match.start()} is written by the widget, "
                "in the visitor's language, and takes no filters"
            )
        placeholders.append(Placeholder(match.start(), match.end(), variable.group(1), tuple(filters)))
    return placeholders


def render_parts(message: str, values: Mapping[str, Any], *, locale: str = "en") -> list[str]:
    """The message as plain text, split where ``timeAgo`` goes (the widget fills it in); a missing value renders
    empty unless a ``default`` filter fills it."""
    parts, out, position = [], [], 0
    for placeholder in parse_message(message):
        out.append(message[position : placeholder.start])
        position = placeholder.end
        if placeholder.variable in LIVE_VARIABLES:
            parts.append("".join(out))
            out = []
            continue
        value = values.get(placeholder.variable)
        text = "" if value is None else _text(value, locale)
        for name, argument in placeholder.filters:
            text = FILTERS[name](text, argument)
        out.append(text)
    out.append(message[position:])
    parts.append("".join(out))
    return parts


def render_message(message: str, values: Mapping[str, Any]) -> str:
    """The message as plain text, with ``timeAgo`` taken from ``values`` (previews use a sample)."""
    return str(values.get("timeAgo", "")).join(render_parts(message, values))


_FORBIDDEN_AT_RULES = {"import", "namespace", "charset", "font-face"}
_FORBIDDEN_FUNCTIONS = {"expression", "element", "image-set", "-webkit-image-set", "env"}
_FORBIDDEN_PROPERTIES = {"behavior", "-moz-binding", "behaviour"}


def check_css(css: str) -> str:
    """The CSS unchanged if it is safe for the widget's shadow root; ``TemplateError`` says what is not."""
    if len(css) > MAX_CSS:
        raise TemplateError(f"CSS is at most {MAX_CSS} characters")
    if "<" in css or "\\" in css:
        raise TemplateError("CSS may not contain '<' or backslash escapes")
    rules = tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True)
    _check_nodes(rules)
    return css


def _check_nodes(nodes: list[Any]) -> None:
    for node in nodes:
        kind = getattr(node, "type", "")
        if kind == "error":
            raise TemplateError(f"CSS does not parse at line {node.source_line}: {node.message}")
        if kind == "at-rule" and node.lower_at_keyword in _FORBIDDEN_AT_RULES:
            raise TemplateError(f"@{node.lower_at_keyword} is not allowed (line {node.source_line})")
        if kind == "url" or (kind == "function" and node.lower_name == "url"):
            _check_url(node)
        if kind == "function" and node.lower_name in _FORBIDDEN_FUNCTIONS:
            raise TemplateError(f"{node.lower_name}() is not allowed (line {node.source_line})")
        if kind == "ident" and node.lower_value in _FORBIDDEN_PROPERTIES:
            raise TemplateError(f"{node.value} is not allowed (line {node.source_line})")
        if kind == "qualified-rule":
            _check_nodes(node.prelude)
            _check_nodes(tinycss2.parse_blocks_contents(node.content, skip_whitespace=True))
        elif kind == "at-rule" and node.content is not None:
            _check_nodes(tinycss2.parse_blocks_contents(node.content, skip_whitespace=True))
            _check_nodes(node.prelude)
        elif kind == "declaration":
            if node.lower_name in _FORBIDDEN_PROPERTIES:
                raise TemplateError(f"{node.name} is not allowed (line {node.source_line})")
            _check_nodes(node.value)
        elif kind in ("function", "() block", "[] block", "{} block"):
            _check_nodes(node.arguments if kind == "function" else node.content)


def _check_url(node: Any) -> None:
    target = (
        node.value
        if node.type == "url"
        else "".join(argument.value for argument in node.arguments if argument.type == "string")
    )
    if not target.strip().lower().startswith("https://"):
        raise TemplateError(f"url() must be an https:// address (line {node.source_line})")
