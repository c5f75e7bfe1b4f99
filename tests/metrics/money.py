"""Money in API responses: ``{"amount", "currency", "exponent"}``, read back as plain minor units for comparisons."""

from __future__ import annotations

from typing import Any

# ISO 4217 decimals of the currencies the tests use, written out here rather than read from the code under test
EXPONENTS = {"USD": 2, "EUR": 2, "GBP": 2, "CAD": 2, "AUD": 2, "JPY": 0, "KWD": 3}


def is_money(value: Any) -> bool:
    return isinstance(value, dict) and value.keys() == {"amount", "currency", "exponent"}


def amounts(data: Any, currency: str | None = None) -> Any:
    """``data`` with every Money object replaced by its amount, once each is checked: an integer, the currency's own
    exponent, and ``currency`` when it is given."""
    if is_money(data):
        assert isinstance(data["amount"], int), data
        assert data["exponent"] == EXPONENTS[data["currency"]], data
        assert currency is None or data["currency"] == currency, (data, currency)
        return data["amount"]
    if isinstance(data, dict):
        return {key: amounts(value, currency) for key, value in data.items()}
    if isinstance(data, list):
        return [amounts(value, currency) for value in data]
    return data
