"""data stats and data check on small datasets written here: exact counts, problems and locations."""

from __future__ import annotations

import json

import pytest

from chatft.core.errors import DataFormatError
from chatft.data_tools.check import check
from chatft.data_tools.stats import percentile, stats


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def ex(text, tags, intent):
    return {"words": text.split(), "tags": tags.split(), "intent": intent}


@pytest.fixture
def data(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    write_jsonl(
        d / "train.jsonl",
        [
            ex("fly to boston", "O O B-city", "flight"),
            ex("fly to boston", "O O B-city", "flight"),
            ex("fly to denver", "O O B-city", "flight"),
            ex("hi", "O", "greet"),
            ex("book it", "O O", "flight"),
            ex("book it", "O O", "book"),
        ],
    )
    write_jsonl(d / "dev.jsonl", [ex("fly to denver", "O O B-city", "flight"), ex("bye", "O", "bye")])
    write_jsonl(d / "test.jsonl", [ex("hi", "O", "greet"), ex("on monday", "O B-day", "flight")])
    return d


def test_stats_counts_and_problems(data, capsys):
    result = stats(str(data), min_count=2)
    train = result["splits"]["train"]
    assert train["examples"] == 6
    assert train["intents"] == {"flight": 4, "greet": 1, "book": 1}
    assert train["slot_types"] == {"city": 3}
    assert train["rarest_intents"] == [["book", 1], ["greet", 1], ["flight", 4]]
    assert train["length"] == {"min": 1, "p50": 2, "p90": 3, "p99": 3, "max": 3}
    p = result["problems"]
    t = data / "train.jsonl"
    assert p["duplicates in train"] == {
        "count": 2,
        "items": [f"'fly to boston' at {t}:1, {t}:2", f"'book it' at {t}:5, {t}:6"],
    }
    assert p["train/dev leakage"] == {
        "count": 1,
        "items": [f"'fly to denver' at {t}:3 and {data / 'dev.jsonl'}:1"],
    }
    assert p["train/test leakage"] == {"count": 1, "items": [f"'hi' at {t}:4 and {data / 'test.jsonl'}:1"]}
    assert p["contradictions"] == {
        "count": 1,
        "items": [f"'book it': flight O O at {t}:5; book O O at {t}:6"],
    }
    assert p["intents with < 2 train examples"] == {"count": 2, "items": ["book (1)", "greet (1)"]}
    assert p["slot types with < 2 train examples"] == {"count": 0, "items": []}
    assert p["dev intents unseen in train"] == {"count": 1, "items": ["bye"]}
    assert p["test slot types unseen in train"] == {"count": 1, "items": ["day"]}
    out = capsys.readouterr().out
    assert (
        "train/test leakage: 1" in out and "rarest intents in train: book (1), greet (1), flight (4)" in out
    )


def test_stats_json_and_plot(data, tmp_path, capsys):
    png = tmp_path / "plots" / "stats.png"
    result = stats(str(data), json=True, plot_path=str(png))
    assert json.loads(capsys.readouterr().out) == result
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert [percentile(values, q) for q in (50, 90, 99, 100)] == [50, 90, 99, 100]
    assert percentile([], 50) == 0


def test_check_ok_and_warnings(data, capsys):
    (data / "test.jsonl").unlink()
    check(str(data))
    captured = capsys.readouterr()
    assert captured.out == f"ok: {data} (jsonl): train 6, dev 2 examples; 3 intents, 1 slot types in train\n"
    assert captured.err == "warning: test: no test split (it is optional: only `test` reads it)\n"


def test_check_refuses_what_fit_refuses(data):
    (data / "dev.jsonl").write_text('{"words": ["bye"], "intent": "bye"}\n', encoding="utf-8")
    with pytest.raises(
        DataFormatError, match=rf"^{data / 'dev.jsonl'}:1: this split has no slot tags but train has"
    ):
        check(str(data))
