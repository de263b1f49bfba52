"""Entity values after the model (chatft.core.entities / values / entity_resources): a table of phrases with
exact expected values, numbers, money, dates and times against a fixed reference time, synonyms, regexes and
lookup tables, applied to predictions as every front end applies them."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from chatft.core.entities import EntityResolver
from chatft.core.entity_resources import EntityResources
from chatft.core.errors import DataFormatError
from chatft.core.prediction import Prediction, Slot
from chatft.core.values import dimension_of

#: A Wednesday, 09:30 (naive: the server's local time).
REF = datetime(2026, 12, 2, 9, 30)
SLOT_TYPES = ["amount", "guests", "date", "account", "city", "account_number", "zipcode"]


def resources() -> EntityResources:
    res = EntityResources()
    res.add_synonym("current account", "checking")
    res.add_synonym("chequing", "checking")
    res.add_synonym("NYC", "New York")
    res.add_synonym("xmas", "december 25")
    res.add_regex("account_number", r"\d{10,12}", "nlu.yml:9")
    res.add_regex("zipcode", r"\b[0-9]{5}\b", "nlu.yml:12")  # used as written: no word boundaries added
    res.add_regex("not_a_slot", r"\w+", "nlu.yml:15")  # named like no slot type: unused, as in Rasa
    res.add_lookup("city", ["boston", "new york", "new york city", "denver"])
    return res


RESOLVER = EntityResolver(resources(), SLOT_TYPES)


def model_prediction(text: str, slots: list[tuple[str, int, int]]) -> Prediction:
    """A prediction as the model gives it: each slot's value is its text."""
    return Prediction(
        text=text, words=text.split(), tags=[], intent="x", intent_confidence=1.0, intents_top_k=[("x", 1.0)],
        slots=[Slot(label, text[a:b], a, b, 0.9) for label, a, b in slots],
    )  # fmt: skip


N, M, T = "number", "amount-of-money", "time"
#: (slot type, slot text, canonical value, typed value): the slot covers the whole text.
TYPED = [
    # numbers (text2num for words, price-parser for digits)
    ("guests", "fifty", "50", {"dim": N, "value": 50}),
    ("guests", "twenty one", "21", {"dim": N, "value": 21}),
    ("guests", "one hundred and five", "105", {"dim": N, "value": 105}),
    ("guests", "2", "2", {"dim": N, "value": 2}),
    ("guests", "1,200", "1200", {"dim": N, "value": 1200}),
    ("guests", "twenty first", "21", {"dim": N, "value": 21}),
    ("guests", "two point five", "2.5", {"dim": N, "value": 2.5}),
    ("guests", "zero", "0", {"dim": N, "value": 0}),
    ("guests", "a dozen", "a dozen", None),  # not a number word text2num knows
    ("guests", "1.5 million", "1.5 million", None),  # two numbers after text2num: none rather than wrong
    # amounts of money
    ("amount", "$250", "250 USD", {"dim": M, "value": 250, "unit": "USD"}),
    ("amount", "250 dollars", "250 USD", {"dim": M, "value": 250, "unit": "USD"}),
    ("amount", "fifty bucks", "50 USD", {"dim": M, "value": 50, "unit": "USD"}),
    ("amount", "€30", "30 EUR", {"dim": M, "value": 30, "unit": "EUR"}),
    ("amount", "30 euros", "30 EUR", {"dim": M, "value": 30, "unit": "EUR"}),
    ("amount", "£12.50", "12.5 GBP", {"dim": M, "value": 12.5, "unit": "GBP"}),
    ("amount", "USD 1,200", "1200 USD", {"dim": M, "value": 1200, "unit": "USD"}),
    ("amount", "EUR 15,99", "15.99 EUR", {"dim": M, "value": 15.99, "unit": "EUR"}),
    ("amount", "twenty pounds", "20 GBP", {"dim": M, "value": 20, "unit": "GBP"}),
    ("amount", "5 quid", "5 GBP", {"dim": M, "value": 5, "unit": "GBP"}),
    ("amount", "¥500", "500 JPY", {"dim": M, "value": 500, "unit": "JPY"}),
    ("amount", "one hundred fifty dollars", "150 USD", {"dim": M, "value": 150, "unit": "USD"}),
    ("amount", "100", "100", {"dim": M, "value": 100, "unit": None}),
    ("amount", "cheapest", "cheapest", None),
    # dates and times relative to Wednesday 2026-12-02 09:30 (dateparser; future preferred)
    ("date", "tomorrow", "2026-12-03", {"dim": T, "value": "2026-12-03", "grain": "day"}),
    ("date", "today", "2026-12-02", {"dim": T, "value": "2026-12-02", "grain": "day"}),
    ("date", "yesterday", "2026-12-01", {"dim": T, "value": "2026-12-01", "grain": "day"}),
    ("date", "next friday", "2026-12-04", {"dim": T, "value": "2026-12-04", "grain": "day"}),
    ("date", "monday", "2026-12-07", {"dim": T, "value": "2026-12-07", "grain": "day"}),
    ("date", "in 3 days", "2026-12-05", {"dim": T, "value": "2026-12-05", "grain": "day"}),
    ("date", "the day after tomorrow", "2026-12-04", {"dim": T, "value": "2026-12-04", "grain": "day"}),
    ("date", "december 25", "2026-12-25", {"dim": T, "value": "2026-12-25", "grain": "day"}),
    ("date", "march 3rd", "2027-03-03", {"dim": T, "value": "2027-03-03", "grain": "day"}),
    ("date", "2027-01-15", "2027-01-15", {"dim": T, "value": "2027-01-15", "grain": "day"}),
    ("date", "next week", "2026-12-09", {"dim": T, "value": "2026-12-09", "grain": "week"}),
    ("date", "may", "2027-05-01", {"dim": T, "value": "2027-05-01", "grain": "month"}),
    ("date", "tomorrow at 5pm", "2026-12-03T17:00:00", {"dim": T, "value": "2026-12-03T17:00:00", "grain": "time"}),
    ("date", "5pm", "2026-12-02T17:00:00", {"dim": T, "value": "2026-12-02T17:00:00", "grain": "time"}),
    ("date", "8 am", "2026-12-03T08:00:00", {"dim": T, "value": "2026-12-03T08:00:00", "grain": "time"}),
    ("date", "noon", "2026-12-02T12:00:00", {"dim": T, "value": "2026-12-02T12:00:00", "grain": "time"}),
    ("date", "in an hour", "2026-12-02T10:30:00", {"dim": T, "value": "2026-12-02T10:30:00", "grain": "time"}),
    ("date", "friday at 9:15", "2026-12-04T09:15:00", {"dim": T, "value": "2026-12-04T09:15:00", "grain": "time"}),
    ("date", "tonight", "2026-12-02T20:00:00", {"dim": T, "value": "2026-12-02T20:00:00", "grain": "part_of_day"}),
    ("date", "morning", "morning", None),
    # a synonym first, then its value typed
    ("date", "Xmas", "2026-12-25", {"dim": T, "value": "2026-12-25", "grain": "day"}),
]  # fmt: skip


@pytest.mark.parametrize(("label", "text", "value", "typed"), TYPED)
def test_typed_values_of_the_phrase_table(label, text, value, typed):
    slot = RESOLVER.resolve(model_prediction(text, [(label, 0, len(text))]), REF).slots[0]
    assert (slot.label, slot.text, slot.start, slot.end) == (label, text, 0, len(text))
    assert (slot.value, slot.typed) == (value, typed)
    processors = (("EntitySynonymMapper",) if text == "Xmas" else ()) + (
        ("ValueNormalizer",) if typed else ()
    )
    assert (slot.extractor, slot.processors) == ("chatft", processors)


C = "chatft"
R = "RegexEntityExtractor"
S = ("EntitySynonymMapper",)
#: (text, the model's slots, every resolved slot as (label, text, value, start, end, extractor, processors)).
EXTRACTED = [
    # synonyms: inline values and synonym: blocks, any case, also the value itself in another case
    ("move it to my current account", [("account", 14, 29)],
     [("account", "current account", "checking", 14, 29, C, S)]),
    ("pay from Chequing", [("account", 9, 17)], [("account", "Chequing", "checking", 9, 17, C, S)]),
    ("pay from CHECKING", [("account", 9, 17)], [("account", "CHECKING", "checking", 9, 17, C, S)]),
    ("pay from savings", [("account", 9, 16)], [("account", "savings", "savings", 9, 16, C, ())]),
    # lookup tables: whole words, case-insensitive, longest element first; synonyms apply to the matches too
    ("fly to Denver", [], [("city", "Denver", "Denver", 7, 13, R, ())]),
    ("fly to new york city now", [], [("city", "new york city", "new york city", 7, 20, R, ())]),
    ("fly to denverville", [], []),
    ("from boston to denver", [],
     [("city", "boston", "boston", 5, 11, R, ()), ("city", "denver", "denver", 15, 21, R, ())]),
    ("fly to nyc", [("city", 7, 10)], [("city", "nyc", "New York", 7, 10, C, S)]),
    # regexes: named like a slot type; a match equal to a model slot is not repeated
    ("account 1234567890 please", [], [("account_number", "1234567890", "1234567890", 8, 18, R, ())]),
    ("account 1234567890 please", [("account_number", 8, 18)],
     [("account_number", "1234567890", "1234567890", 8, 18, C, ())]),
    ("zip 02139", [], [("zipcode", "02139", "02139", 4, 9, R, ())]),
    ("send to boston 02139", [("city", 8, 14)],
     [("city", "boston", "boston", 8, 14, C, ()), ("zipcode", "02139", "02139", 15, 20, R, ())]),
    # overlapping model slot and match of another type: both kept, as Rasa keeps them
    ("book for new york", [("account", 9, 12)],
     [("account", "new", "new", 9, 12, C, ()), ("city", "new york", "New York", 9, 17, R, S)]),
]  # fmt: skip


@pytest.mark.parametrize(("text", "model_slots", "want"), EXTRACTED)
def test_synonyms_regexes_and_lookups_of_the_phrase_table(text, model_slots, want):
    got = RESOLVER.resolve(model_prediction(text, model_slots), REF).slots
    assert [(s.label, s.text, s.value, s.start, s.end, s.extractor, s.processors) for s in got] == want
    assert all(text[s.start : s.end] == s.text for s in got)


def test_the_table_has_at_least_40_phrases():
    assert len(TYPED) + len(EXTRACTED) == 59


def test_regex_and_lookup_confidence_is_one_and_resolving_twice_changes_nothing():
    pred = RESOLVER.resolve(
        model_prediction("fly to nyc for $250", [("city", 7, 10), ("amount", 15, 19)]), REF
    )
    assert [s.confidence for s in pred.slots] == [0.9, 0.9]
    assert RESOLVER.resolve(pred, REF) == pred
    assert pred.slot_values() == {"city": "New York", "amount": "250 USD"}


def test_an_aware_reference_time_gives_times_in_its_offset():
    ref = datetime(2026, 12, 2, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    slot = RESOLVER.resolve(model_prediction("tomorrow at 5pm", [("date", 0, 15)]), ref).slots[0]
    assert slot.typed == {"dim": "time", "value": "2026-12-03T17:00:00-05:00", "grain": "time"}


def test_a_zone_in_the_text_is_kept_as_the_same_instant_in_the_reference_zone():
    # Before: the text's zone was overwritten by the reference's ("10:00Z" read as 10:00+01:00, an hour off)
    # or, with a naive reference, dropped. A clock time said in a zone is that instant, given in the
    # reference's offset; a date keeps its day; a naive reference keeps the zone the text said.
    from chatft.core.values import normalise, reference_time

    ref = reference_time("2026-12-02T09:30:00+01:00")
    got = [
        normalise(t, "time", ref)["value"] for t in ("2026-12-05T10:00:00Z", "5pm EST", "5pm", "tomorrow utc")
    ]
    assert got == [
        "2026-12-05T11:00:00+01:00",
        "2026-12-02T23:00:00+01:00",
        "2026-12-02T17:00:00+01:00",
        "2026-12-03",
    ]
    naive = [normalise(t, "time", REF)["value"] for t in ("5pm EST", "5pm")]
    assert naive == ["2026-12-02T17:00:00-05:00", "2026-12-02T17:00:00"]


def test_which_slot_types_are_typed():
    assert [dimension_of(t) for t in ("number_of_people", "fare_amount", "arrive_time.time", "number")] == [
        "number", "amount-of-money", "time", "number",
    ]  # fmt: skip
    names = ("fromloc.city_name", "account", "round_trip", "account_number", "flight_number")
    assert [dimension_of(t) for t in names] == [None] * 5
    assert dimension_of("fare_amount", {"fare_amount": None}) is None
    assert dimension_of("code", {"code": "number"}) == "number"


def test_value_types_and_currencies_in_the_resources_override_the_defaults():
    res = EntityResources.from_dict(
        {"value_types": {"account": "number", "amount": None}, "currencies": {"$": "cad"}}
    )
    resolver = EntityResolver(res, ["account", "price"])
    got = resolver.resolve(
        model_prediction("12 $5 9", [("account", 0, 2), ("price", 3, 5), ("amount", 6, 7)]), REF
    )
    assert [(s.value, s.typed) for s in got.slots] == [
        ("12", {"dim": "number", "value": 12}),
        ("5 CAD", {"dim": "amount-of-money", "value": 5, "unit": "CAD"}),
        ("9", None),
    ]
    assert (
        EntityResolver(res, ["price"], typed_values=False)
        .resolve(model_prediction("$5", [("price", 0, 2)]), REF)
        .slots[0]
        .typed
        is None
    )


def test_resources_round_trip_and_bad_files_are_one_line_errors(tmp_path):
    res = resources()
    assert EntityResources.from_dict(json.loads(json.dumps(res.to_dict()))) == res
    assert EntityResources.load(tmp_path) is None
    res.save(tmp_path)
    assert EntityResources.load(tmp_path) == res
    (tmp_path / "entities.json").write_text('{"synonyms": {}, "lookup": []}', encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        EntityResources.load(tmp_path)
    assert str(err.value) == (
        f"{tmp_path / 'entities.json'}: unknown keys ['lookup'] (known: format, version, synonyms, regexes, "
        "lookups, value_types, currencies, language)"
    )
    with pytest.raises(DataFormatError) as err:
        EntityResources.from_dict({"value_types": {"a": "date"}}, "entities.json")
    assert str(err.value) == (
        "entities.json: value_types['a'] is 'date'; expected one of number, amount-of-money, time or null"
    )
    with pytest.raises(DataFormatError) as err:
        EntityResources().add_regex("zip", "[0-9", "nlu.yml:7")
    assert str(err.value) == (
        "nlu.yml:7: regex 'zip': '[0-9' is not a valid pattern (unterminated character set at position 0)"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"regexes": [{"name": "zip"}]}, 'regexes[0]: expected {"name": ..., "pattern": ...}'),
        ({"regexes": {"zip": "[0-9]{5}"}}, "regexes must be a list, got dict"),
        ({"lookups": [{"name": "city"}]}, 'lookups[0]: expected {"name": ..., "elements": ...}'),
        (
            {"lookups": [{"name": "city", "elements": "cities.txt"}]},
            "lookups[0]: elements must be a list of strings",
        ),
        ({"synonyms": [["nyc", "New York"]]}, "synonyms must be a JSON object, got list"),
        ({"currencies": "CAD"}, "currencies must be a JSON object, got str"),
        # An unknown language made dateparser raise on every time slot: HTTP 500 per request in serve.
        (
            {"language": "xx"},
            'language \'xx\' is not a language code dateparser knows (e.g. "en", "fr", "de", "zh")',
        ),
        (
            {"language": ["fr"]},
            'language [\'fr\'] is not a language code dateparser knows (e.g. "en", "fr", "de", "zh")',
        ),
    ],
)
def test_a_hand_edited_file_of_the_wrong_shape_is_a_one_line_error(data, message):
    """The file may be edited by hand before fit: a wrong shape was a KeyError/AttributeError traceback."""
    with pytest.raises(DataFormatError) as err:
        EntityResources.from_dict(data, "entities.json")
    assert str(err.value) == f"entities.json: {message}"


def test_a_file_that_only_sets_the_language_is_kept():
    """``{"language": "fr"}`` alone (typed values read in French) was falsy, so the resolver, fit's checkpoint
    and the predictors replaced it with the English default."""
    res = EntityResources.from_dict({"language": "fr"})
    assert bool(res) is True
    assert EntityResolver(res, ["date"]).resources.language == "fr"
    assert bool(EntityResources()) is False


def test_a_regex_added_twice_is_kept_once_and_lookups_of_one_name_merge():
    res = EntityResources()
    for _ in range(2):
        res.add_regex("zip", r"\d{5}", "nlu.yml:3")
        res.add_lookup("city", ["boston", "denver"])
    res.add_lookup("city", ["denver", "new york"])
    assert (res.regexes, res.lookups) == ([("zip", r"\d{5}")], [("city", ("boston", "denver", "new york"))])


def test_synonym_clash_is_reported_and_the_later_value_wins():
    res = EntityResources()
    assert res.add_synonym("cc", "credit") is True
    assert res.add_synonym("CC", "checking") is False
    assert res.synonyms == {"cc": "checking", "credit": "credit", "checking": "checking"}


def test_normalising_imports_no_torch():
    """tests/test_boundary.py imports every core module; this also runs the three parsing libraries."""
    code = (
        "import sys; from chatft.core.values import normalise; "
        "normalise('tomorrow', 'time'); normalise('fifty bucks', 'amount-of-money'); "
        "assert not {'torch', 'transformers', 'lightning'} & set(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
