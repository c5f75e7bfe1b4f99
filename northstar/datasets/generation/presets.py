r"""Preset schemas for common data sets, a starting point a request can extend, override or trim.

A preset's ``links`` name the columns that become foreign keys when the request gives a dataset for
them (``"links": {"users": "<dataset id>"}`` turns ``orders.user_id`` into a reference to that
dataset's ``id``); without a link they stay standalone ids in a plausible range.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import TypeAdapter

from northstar.core.http import CamelModel
from northstar.datasets.generation.columns import Column, ColumnSpec

PresetName = Literal["users", "products", "orders", "events", "saas_subscriptions"]


@dataclass(frozen=True)
class Link:
    column: str  # the preset column that becomes a reference
    referenced_column: str = "id"


@dataclass(frozen=True)
class Preset:
    name: PresetName
    description: str
    columns: tuple[Column, ...]
    links: dict[str, Link] = field(default_factory=dict)


class PresetInfo(CamelModel):
    """What an API shows about a preset."""

    name: str
    description: str
    links: dict[str, str]
    columns: list[ColumnSpec]


_COLUMNS: TypeAdapter[list[Column]] = TypeAdapter(list[ColumnSpec])


def _preset(name: PresetName, description: str, columns: list[dict[str, Any]], **links: Link) -> Preset:
    return Preset(name, description, tuple(_COLUMNS.validate_python(columns)), links)


def _since(start: str, end: str = "2025-12-31T23:59:59Z", **extra: Any) -> dict[str, Any]:
    return {"type": "datetime", "min": start, "max": end, **extra}


def _zipf(a: float) -> dict[str, Any]:
    return {"type": "zipf", "a": a}


_IDS = {"type": "int", "distribution": {"type": "sequence", "start": 1}}

PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        _preset(
            "users",
            "People signing up to a product: names, matching emails, contact details, plan.",
            [
                {"name": "id", **_IDS},
                {"name": "first_name", "type": "first_name"},
                {"name": "last_name", "type": "last_name"},
                {"name": "email", "type": "email", "fromColumns": ["first_name", "last_name"], "unique": True},
                {"name": "phone", "type": "phone", "nullRatio": 0.15},
                {"name": "city", "type": "city"},
                {"name": "country", "type": "country"},
                {"name": "plan", "type": "enum", "values": ["free", "pro", "business"], "weights": [70, 24, 6]},
                {"name": "is_active", "type": "bool", "trueRatio": 0.85},
                {"name": "signed_up_at", **_since("2021-01-01T00:00:00Z")},
            ],
        ),
        _preset(
            "products",
            "A catalogue: names, SKUs, categories, log-normally spread prices and stock.",
            [
                {"name": "id", **_IDS},
                {"name": "name", "type": "product_name"},
                {"name": "sku", "type": "pattern", "pattern": r"SKU-[A-Z]{3}-\d{6}", "unique": True},
                {
                    "name": "category",
                    "type": "enum",
                    "distribution": _zipf(1.1),
                    "values": [
                        "Home",
                        "Electronics",
                        "Clothing",
                        "Sports",
                        "Toys",
                        "Beauty",
                        "Garden",
                        "Books",
                        "Grocery",
                    ],
                },
                {
                    "name": "price",
                    "type": "amount",
                    "min": "1.00",
                    "max": "5000",
                    "distribution": {"type": "lognormal", "mean": 3.4, "sigma": 0.9},
                },
                {
                    "name": "stock",
                    "type": "int",
                    "min": 0,
                    "max": 5000,
                    "distribution": {"type": "lognormal", "mean": 4.0, "sigma": 1.2},
                },
                {"name": "is_available", "type": "bool", "trueRatio": 0.92},
                {"name": "created_at", **_since("2019-01-01T00:00:00Z")},
            ],
        ),
        _preset(
            "orders",
            "Purchases: who bought what, how many, for how much, and where the order stands.",
            [
                {"name": "id", **_IDS},
                {"name": "order_number", "type": "pattern", "pattern": "ORD-{{row:8}}", "unique": True},
                {"name": "user_id", "type": "int", "min": 1, "max": 100_000, "distribution": _zipf(0.8)},
                {"name": "product_id", "type": "int", "min": 1, "max": 10_000, "distribution": _zipf(1.05)},
                {"name": "quantity", "type": "int", "min": 1, "max": 20, "distribution": _zipf(2.2)},
                {"name": "amount", "type": "amount"},
                {
                    "name": "currency",
                    "type": "enum",
                    "values": ["USD", "EUR", "GBP", "JPY", "BRL"],
                    "weights": [55, 25, 10, 5, 5],
                },
                {
                    "name": "status",
                    "type": "enum",
                    "values": ["pending", "paid", "shipped", "delivered", "cancelled", "refunded"],
                    "weights": [5, 10, 15, 60, 7, 3],
                },
                {"name": "ordered_at", **_since("2023-01-01T00:00:00Z")},
            ],
            users=Link("user_id"),
            products=Link("product_id"),
        ),
        _preset(
            "events",
            "Product analytics events: who did what, when, on which device and page.",
            [
                {"name": "id", "type": "uuid"},
                {"name": "user_id", "type": "int", "min": 1, "max": 100_000, "distribution": _zipf(0.9)},
                {"name": "session_id", "type": "uuid"},
                {
                    "name": "event_type",
                    "type": "enum",
                    "distribution": _zipf(1.3),
                    "values": [
                        "page_view",
                        "click",
                        "scroll",
                        "search",
                        "add_to_cart",
                        "sign_in",
                        "purchase",
                        "sign_up",
                        "share",
                        "sign_out",
                    ],
                },
                {"name": "url", "type": "url"},
                {"name": "device", "type": "enum", "values": ["desktop", "mobile", "tablet"], "weights": [48, 46, 6]},
                {"name": "country", "type": "country"},
                {
                    "name": "duration_ms",
                    "type": "int",
                    "min": 0,
                    "max": 3_600_000,
                    "distribution": {"type": "lognormal", "mean": 7.5, "sigma": 1.5},
                },
                {"name": "occurred_at", **_since("2025-01-01T00:00:00Z", resolution="ms")},
            ],
            users=Link("user_id"),
        ),
        _preset(
            "saas_subscriptions",
            "Subscriptions of a B2B SaaS: plan, seats, MRR, status and dates.",
            [
                {"name": "id", "type": "uuid"},
                {"name": "account_id", "type": "int", "min": 1, "max": 2_000_000_000, "unique": True},
                {"name": "company", "type": "company"},
                {
                    "name": "plan",
                    "type": "enum",
                    "values": ["starter", "growth", "scale", "enterprise"],
                    "weights": [50, 30, 15, 5],
                },
                {"name": "billing_period", "type": "enum", "values": ["monthly", "annual"], "weights": [65, 35]},
                {
                    "name": "seats",
                    "type": "int",
                    "min": 1,
                    "max": 2000,
                    "distribution": {"type": "lognormal", "mean": 2.0, "sigma": 1.1},
                },
                {
                    "name": "mrr",
                    "type": "amount",
                    "min": "9.00",
                    "max": "250000",
                    "distribution": {"type": "lognormal", "mean": 6.0, "sigma": 1.3},
                },
                {
                    "name": "status",
                    "type": "enum",
                    "values": ["trialing", "active", "past_due", "canceled"],
                    "weights": [8, 75, 4, 13],
                },
                {"name": "started_at", "type": "date", "min": "2019-01-01", "max": "2025-12-31"},
                {"name": "canceled_at", "type": "date", "min": "2020-01-01", "max": "2025-12-31", "nullRatio": 0.87},
            ],
            users=Link("account_id"),
        ),
    )
}


def list_presets() -> list[PresetInfo]:
    """Every preset with its columns, as a client would send them."""
    return [
        PresetInfo(
            name=preset.name,
            description=preset.description,
            columns=list(preset.columns),
            links={slot: link.column for slot, link in preset.links.items()},
        )
        for preset in PRESETS.values()
    ]
