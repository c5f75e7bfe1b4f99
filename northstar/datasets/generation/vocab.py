"""Locale vocabularies, read once from Faker's provider data and kept as Arrow arrays.

Generation then only draws indices with numpy and lets Arrow gather and join strings, instead of
calling Faker once per value. Lists Faker keeps as data (names with their frequencies, countries,
cities where it has them, words, phone formats) are used as they are; values Faker builds from
formats (streets, companies, other cities) are sampled a few thousand times with a fixed seed and
de-duplicated, so a vocabulary is the same in every process with the same Faker version.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import product
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from faker import Faker
from numpy.typing import NDArray

from northstar.datasets.generation.numeric import cumulative_weights, weighted_choice

Locale = Literal["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "ja_JP", "pt_BR", "nl_NL"]
SAMPLES = 4000  # draws from a Faker formatter to build a vocabulary of formatted values
_FOLD = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "Æ": "AE",
        "ø": "o",
        "Ø": "O",
        "œ": "oe",
        "Œ": "OE",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "þ": "th",
        "\u0131": "i",
    }
)
_NOT_ALNUM = re.compile(r"[^a-z0-9]")
_lock = threading.Lock()  # one Faker per locale, reseeded per vocabulary: builds must not interleave

PRODUCT_ADJECTIVES = (
    "Small",
    "Ergonomic",
    "Rustic",
    "Intelligent",
    "Gorgeous",
    "Incredible",
    "Fantastic",
    "Practical",
    "Sleek",
    "Awesome",
    "Durable",
    "Handcrafted",
    "Refined",
    "Compact",
    "Lightweight",
    "Premium",
    "Classic",
    "Modern",
    "Portable",
    "Heavy Duty",
)
PRODUCT_MATERIALS = (
    "Steel",
    "Wooden",
    "Concrete",
    "Plastic",
    "Cotton",
    "Granite",
    "Rubber",
    "Leather",
    "Silk",
    "Wool",
    "Linen",
    "Marble",
    "Iron",
    "Bronze",
    "Copper",
    "Aluminum",
    "Paper",
    "Glass",
    "Ceramic",
    "Bamboo",
)
PRODUCT_NOUNS = (
    "Chair",
    "Car",
    "Computer",
    "Keyboard",
    "Mouse",
    "Bike",
    "Ball",
    "Gloves",
    "Pants",
    "Shirt",
    "Table",
    "Shoes",
    "Hat",
    "Towels",
    "Soap",
    "Lamp",
    "Clock",
    "Bottle",
    "Wallet",
    "Watch",
    "Coat",
    "Bag",
    "Knife",
    "Plate",
    "Bench",
    "Sofa",
    "Desk",
    "Backpack",
    "Helmet",
    "Jacket",
)


@dataclass(frozen=True)
class Vocabulary:
    """Values to draw from, optionally with frequencies, and their lowercase ASCII forms (for emails, hosts)."""

    values: pa.StringArray
    cumulative: NDArray[np.float64] | None = None
    folded: pa.StringArray | None = None

    def __len__(self) -> int:
        return len(self.values)

    def draw(self, rng: np.random.Generator, count: int) -> NDArray[np.int32]:
        """Indices of ``count`` values, as frequent as Faker makes them."""
        if self.cumulative is None:
            return rng.integers(0, len(self.values), count, dtype=np.int32)
        return weighted_choice(rng, count, self.cumulative).astype(np.int32)


def vocabulary(
    values: Sequence[str], weights: Sequence[float] | None = None, folded: Sequence[str] | None = None
) -> Vocabulary:
    return Vocabulary(
        _strings(values),
        cumulative_weights(weights) if weights is not None else None,
        _strings(folded) if folded is not None else None,
    )


def _strings(values: Sequence[str]) -> pa.StringArray:
    array = pa.array(list(values), pa.string())
    assert isinstance(array, pa.StringArray)
    return array


def fold(text: str) -> str:
    """Lowercase ASCII letters and digits only: ``Müller-Lüdenscheidt`` -> ``mullerludenscheidt``."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return _NOT_ALNUM.sub("", decomposed.encode("ascii", "ignore").decode().lower())


# --- Faker access ---------------------------------------------------------------------------------


@cache
def _faker(locale: Locale) -> Faker:
    return Faker(locale)


def _provider(locale: Locale, kind: str) -> Any:
    """The locale's provider object of one kind (person, address, ...), whose class attributes hold the data."""
    for provider in _faker(locale).get_providers():
        if type(provider).__module__.startswith(f"faker.providers.{kind}"):
            return provider
    raise LookupError(f"Faker has no {kind} provider for {locale}")


def _sampled(locale: Locale, formatter: str, seed: int) -> list[str]:
    """Distinct values of one Faker formatter, drawn with a fixed seed."""
    fake = _faker(locale)
    with _lock:
        fake.seed_instance(seed)
        method: Callable[[], str] = getattr(fake, formatter)
        return list(dict.fromkeys(method() for _ in range(SAMPLES)))


def _names(values: Sequence[str] | Mapping[str, float], romanized: Sequence[str] | None) -> Vocabulary:
    names = list(values)
    weights = list(values.values()) if isinstance(values, Mapping) else None
    ascii_forms = list(romanized) if romanized is not None and len(romanized) == len(names) else names
    return vocabulary(names, weights, [fold(name) or "user" for name in ascii_forms])


# --- vocabularies ---------------------------------------------------------------------------------


@cache
def first_names(locale: Locale) -> Vocabulary:
    person = _provider(locale, "person")
    return _names(person.first_names, getattr(person, "first_romanized_names", None))


@cache
def last_names(locale: Locale) -> Vocabulary:
    person = _provider(locale, "person")
    return _names(person.last_names, getattr(person, "last_romanized_names", None))


@cache
def family_name_first(locale: Locale) -> bool:
    """Whether the locale writes the family name before the given name (ja_JP: 佐藤 健)."""
    formats = _provider(locale, "person").formats
    return str(next(iter(formats))).startswith("{{last_name}}")


@cache
def cities(locale: Locale) -> Vocabulary:
    listed = getattr(_provider(locale, "address"), "cities", None)  # it_IT builds this list from a set: sort it
    return vocabulary(sorted(set(listed)) if listed else _sampled(locale, "city", 1))


@cache
def companies(locale: Locale) -> Vocabulary:
    return vocabulary(_sampled(locale, "company", 2))


@dataclass(frozen=True)
class Streets:
    names: Vocabulary
    numbers: pa.StringArray  # "1" ... "9999"
    number_first: bool  # "12 Main St" rather than "Hauptstraße 12"
    separator: str


@cache
def streets(locale: Locale) -> Streets:
    formats = _provider(locale, "address").street_address_formats
    layout = next(
        (text for text in formats if "{{building_number}}" in text and "{{street_name}}" in text),
        "{{building_number}} {{street_name}}",
    )
    number_at, street_at = layout.index("{{building_number}}"), layout.index("{{street_name}}")
    first, second = sorted((number_at, street_at))
    separator = layout[layout.index("}}", first) + 2 : second]
    return Streets(
        vocabulary(_sampled(locale, "street_name", 3)),
        _strings([str(n) for n in range(1, 10_000)]),
        number_at < street_at,
        separator,
    )


@cache
def countries(locale: Locale) -> Vocabulary:
    return vocabulary(list(dict.fromkeys(_provider(locale, "address").countries)))


@dataclass(frozen=True)
class Words:
    words: Vocabulary  # the word list followed by the same words capitalised (for a sentence's first word)
    size: int
    connector: str
    end: str


@cache
def words(locale: Locale) -> Words:
    lorem = _provider(locale, "lorem")
    plain = list(dict.fromkeys(lorem.word_list))
    return Words(
        vocabulary(plain + [word[:1].upper() + word[1:] for word in plain]),
        len(plain),
        getattr(lorem, "word_connector", " "),
        getattr(lorem, "sentence_punctuation", "."),
    )


@cache
def top_level_domains(locale: Locale) -> Vocabulary:
    return vocabulary(list(_provider(locale, "internet").tlds))


@cache
def products() -> Vocabulary:
    return vocabulary([" ".join(parts) for parts in product(PRODUCT_ADJECTIVES, PRODUCT_MATERIALS, PRODUCT_NOUNS)])


@dataclass(frozen=True)
class PhoneFormats:
    """Faker's phone formats as a padded byte matrix, placeholders (# % $) still in place."""

    templates: NDArray[np.uint8]
    lengths: NDArray[np.int32]


@cache
def phone_formats(locale: Locale) -> PhoneFormats:
    provider = _provider(locale, "phone_number")
    fake = _faker(locale)
    resolved: list[str] = []
    with _lock:
        fake.seed_instance(4)
        for layout in dict.fromkeys(provider.formats):  # resolve {{area_code}}-style parts a few ways each
            resolved.extend(dict.fromkeys(fake.parse(layout) for _ in range(8)) if "{{" in layout else [layout])
    encoded = [text.replace("!", "#").replace("@", "%").encode() for text in resolved]
    width = max(len(text) for text in encoded)
    templates = np.zeros((len(encoded), width), dtype=np.uint8)
    for row, text in enumerate(encoded):
        templates[row, : len(text)] = np.frombuffer(text, dtype=np.uint8)
    return PhoneFormats(templates, np.array([len(text) for text in encoded], dtype=np.int32))
