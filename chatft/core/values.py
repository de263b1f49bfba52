"""Typed values of slot texts: numbers, amounts of money, dates and times (no torch; no parser of our own).

A slot's text ("$250", "fifty bucks", "tomorrow at 5pm") becomes a typed value in Duckling's shape, which is
what Rasa's ``DucklingEntityExtractor``, Dialogflow's system entities and LUIS's prebuilt entities return::

    {"dim": "number", "value": 50}
    {"dim": "amount-of-money", "value": 250, "unit": "USD"}       # unit None when no currency was said
    {"dim": "time", "value": "2026-12-03T17:00:00", "grain": "time"}  # also part_of_day ("tonight")
    {"dim": "time", "value": "2026-12-03", "grain": "day"}            # day, week, month, year: a date

The parsing is done by well-kept libraries (torch-free, BSD/MIT): ``text2num`` turns number words into
digits ("fifty" -> "50", "twenty first" -> "21st"), ``price-parser`` reads the amount and currency sign of
the result ("1,200.50", "€30", "2,50 EUR"), ``dateparser`` reads dates and times relative to a reference
time ("tomorrow", "next friday", "in two weeks", "5pm"; future dates preferred, as Duckling does). An aware
reference gives date-times in its UTC offset, a time said in another zone ("5pm EST") converted to it.

**Which slots are typed** (:func:`dimension_of`): an explicit entry of ``value_types`` in the project's
``entities.json`` wins (``null`` turns typing off for that slot type); otherwise the slot type's name says
it: the type is cut into words at ``.``, ``_``, ``-`` and spaces, and the *last* word that is a hint word
decides (:data:`HINTS`: ``amount``/``price``/``cost``/``fare`` -> money, ``count``/``quantity``/``people``/
``guests`` -> number, ``date``/``time``/``day`` -> time); a type named exactly like a dimension (``number``,
``amount-of-money``, ``time``: Duckling's names) is that dimension. ``number`` is no hint word on its own:
``account_number``, ``flight_number`` or ``phone_number`` are identifiers, whose leading zeros a number
would lose. So ``fare_amount`` is money, ``number_of_people`` a number, ``arrive_time.time`` a time,
``city_name`` nothing. A text that does not parse keeps no typed value (and its text as value).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from chatft.core.errors import ConfigError

__all__ = [
    "DIMENSIONS",
    "HINTS",
    "canonical",
    "dimension_of",
    "known_language",
    "normalise",
    "reference_time",
]

NUMBER, MONEY, TIME = "number", "amount-of-money", "time"
#: The typed values chatft gives (Duckling's dimension names).
DIMENSIONS = (NUMBER, MONEY, TIME)
#: Words of a slot type's name that make its values typed.
HINTS: dict[str, str] = {
    **dict.fromkeys(
        ("amount", "money", "price", "cost", "fare", "budget", "fee", "payment", "balance", "salary"), MONEY
    ),
    **dict.fromkeys(
        (
            "count",
            "quantity",
            "qty",
            "people",
            "persons",
            "guests",
            "adults",
            "children",
            "nights",
            "rooms",
            "seats",
            "tickets",
            "size",
        ),
        NUMBER,
    ),
    **dict.fromkeys(
        ("date", "time", "datetime", "day", "when", "month", "year", "weekday", "deadline"), TIME
    ),
}
#: Currency symbols, codes and words -> ISO 4217 code (``$`` means US dollars unless ``currencies`` says
#: otherwise). price-parser finds the sign in the text; it returns it as written, so this maps it to a code.
CURRENCIES: dict[str, str] = {
    **dict.fromkeys(("$", "us$", "usd", "dollar", "dollars", "buck", "bucks"), "USD"),
    **dict.fromkeys(("€", "eur", "euro", "euros"), "EUR"),
    **dict.fromkeys(("£", "gbp", "pound", "pounds", "quid", "sterling"), "GBP"),
    **dict.fromkeys(("¥", "jpy", "yen"), "JPY"),
    **dict.fromkeys(("₹", "inr", "rupee", "rupees"), "INR"),
    **dict.fromkeys(("chf", "franc", "francs"), "CHF"),
    **dict.fromkeys(("cad", "c$", "ca$"), "CAD"),
    **dict.fromkeys(("aud", "a$", "au$"), "AUD"),
}
_WORDS = re.compile(r"[^\W\d_]+|[^\w\s]+", re.UNICODE)
_NAME_WORDS = re.compile(r"[._\-\s]+")
_NUMBERS = re.compile(r"\d+(?:[.,]\d+)*")


def dimension_of(label: str, value_types: Mapping[str, str | None] | None = None) -> str | None:
    """Which typed value slots of type ``label`` get (None: none). See the module docstring for the rule."""
    if value_types and label in value_types:
        return value_types[label]
    if label.lower() in DIMENSIONS:  # Duckling's own names, as Rasa projects that used Duckling call them
        return label.lower()
    dim = None
    for word in _NAME_WORDS.split(label.lower()):
        dim = HINTS.get(word, dim)
    return dim


def reference_time(value: str) -> datetime:
    """An ISO 8601 date-time (``2026-12-02T09:30:00``, with an offset or a trailing ``Z`` for UTC) as what
    relative dates are read against; ValueError otherwise. The one parser of ``serve``'s ``"reference_time"``
    field and ``predict``'s ``--predictions.reference_time``, so both accept the same strings."""
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)


def known_language(language: str) -> bool:
    """Whether dateparser reads dates in ``language`` (an ISO 639 code such as ``en``, ``fr``, ``zh``).

    Checked when ``entities.json`` is read: an unknown code made dateparser raise on every request with a
    time slot (HTTP 500 in ``serve``) instead of failing once, at load, naming the file. True when dateparser is
    not installed (nothing to check against; typed values then report the missing library themselves)."""
    try:
        from dateparser.data.languages_info import language_order
    except ImportError:
        return True
    return language in language_order


def _libraries():
    try:
        import dateparser  # noqa: F401
        import price_parser  # noqa: F401
        import text_to_num  # noqa: F401
    except ImportError as err:
        raise ConfigError(
            f"typed slot values need {err.name} (pip install dateparser price-parser text2num)"
        ) from None


def _digits(text: str, language: str) -> str:
    """Number words as digits ("fifty bucks" -> "50 bucks"); a language text2num lacks leaves text as is."""
    from text_to_num import alpha2digit

    try:
        return alpha2digit(text, language, threshold=0)
    except ValueError:
        return text


def _plain(amount: Decimal) -> int | float:
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def _amount(text: str, language: str):
    """price-parser's reading of ``text`` with number words as digits; None where the text holds several
    numbers: price-parser would join "5 1000000" (from "5 million") into one, so no value beats a wrong one."""
    from price_parser import Price

    digits = _digits(text, language)
    if len(_NUMBERS.findall(digits)) != 1:
        return None
    return Price.fromstring(digits)


def _number(text: str, language: str) -> dict | None:
    price = _amount(text, language)
    return None if price is None or price.amount is None else {"dim": NUMBER, "value": _plain(price.amount)}


def _money(text: str, language: str, currencies: Mapping[str, str]) -> dict | None:
    price = _amount(text, language)
    if price is None or price.amount is None:
        return None
    said = [price.currency] if price.currency else []
    said += _WORDS.findall(text.lower())
    unit = next((currencies[w.lower()] for w in said if w.lower() in currencies), None)
    if unit is None and price.currency and re.fullmatch(r"[A-Za-z]{3}", price.currency):
        unit = price.currency.upper()  # an ISO code price-parser knows that is not in the table
    return {"dim": MONEY, "value": _plain(price.amount), "unit": unit}


@functools.lru_cache(maxsize=64)
def _date_parser(language: str, base: datetime):
    from dateparser.date import DateDataParser

    settings = {
        "RELATIVE_BASE": base,
        "PREFER_DATES_FROM": "future",
        "PREFER_DAY_OF_MONTH": "first",
        "RETURN_TIME_AS_PERIOD": True,
    }
    return DateDataParser(languages=[language], settings=settings)


def _time(text: str, language: str, reference_time: datetime) -> dict | None:
    # dateparser reads relative dates in the reference's own wall-clock time; the offset is put back after.
    tz = reference_time.tzinfo
    data = _date_parser(language, reference_time.replace(tzinfo=None)).get_date_data(text)
    if data is None or data.date_obj is None:
        return None
    grain = data.period or "day"
    when = data.date_obj
    if grain not in ("time", "part_of_day"):  # a day, week, month or year: a date, as said
        return {"dim": TIME, "value": when.date().isoformat(), "grain": grain}
    # A clock time ("5pm") or a part of the day ("tonight": 20:00) is a date-time. One said in a zone ("5pm
    # EST", "10:00Z") is that instant, given in the reference's offset (as a naive reference has none, in the
    # zone said); one said without is the reference's wall-clock time.
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    elif tz is not None:
        when = when.astimezone(tz)
    return {"dim": TIME, "value": when.isoformat(timespec="seconds"), "grain": grain}


def normalise(
    text: str,
    dim: str,
    reference_time: datetime | None = None,
    language: str = "en",
    currencies: Mapping[str, str] | None = None,
) -> dict | None:
    """The typed value of ``text`` as ``dim`` (see the module docstring), or None when it does not parse.

    ``reference_time``: what "tomorrow" is relative to (default: now, local time; an aware datetime gives
    times with its UTC offset). ``currencies``: extra symbol/word -> ISO code entries (over :data:`CURRENCIES`).
    """
    _libraries()
    if dim == NUMBER:
        return _number(text, language)
    if dim == MONEY:
        table = {**CURRENCIES, **{k.lower(): v for k, v in (currencies or {}).items()}}
        return _money(text, language, table)
    if dim == TIME:
        return _time(text, language, reference_time or datetime.now().replace(microsecond=0))
    raise ValueError(f"unknown value dimension {dim!r}; expected one of {', '.join(DIMENSIONS)}")


def canonical(typed: dict) -> str:
    """The typed value as the slot's canonical ``value`` string: ``50``, ``250 USD``, ``2026-12-03``."""
    if typed["dim"] == MONEY and typed.get("unit"):
        return f"{typed['value']} {typed['unit']}"
    return str(typed["value"])
