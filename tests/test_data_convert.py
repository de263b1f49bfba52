"""data convert: every input format on small files written here, exact JSON Lines out, one-line errors.

The converter is called as a function here (fast); tests/test_data_cli.py runs it through
``python -m chatft data convert`` for the exit codes.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from chatft.core.errors import ConfigError, DataFormatError
from chatft.data_tools.carve import carve, parse_fractions
from chatft.data_tools.convert import convert

from .conftest import REPO

CLINC = REPO.parent / "shared" / "data" / "clinc150" / "data_full.json"

RASA_YAML = """\
version: "3.1"
nlu:
- intent: book_flight
  examples: |
    - book a flight to [Boston](city) tomorrow
    - fly from [NYC]{"entity": "city", "value": "New York", "role": "from"} to [LA]{"entity": "city", "role": "to"}

    - what about [tomorrow](date)'s weather
- synonym: New York
  examples: |
    - NYC
    - big apple
- regex: zipcode
  examples: |
    - [0-9]{5}
- lookup: city
  examples: |
    - Boston
- intent: greet
  examples: |
    - hi
    - [good morning](greeting:morning) !
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def row(words: str, tags: str | None, intent: str) -> dict:
    out: dict = {"words": words.split()}
    if tags is not None:
        out["tags"] = tags.split()
    out["intent"] = intent
    return out


def one_line_error(exc_info, starts: str) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    assert message.startswith(starts), message
    return message


# --- rasa-yaml ---------------------------------------------------------------------------------------------


def test_rasa_yaml_entities_synonyms_roles_and_multiline_examples(tmp_path, capsys):
    nlu = write(tmp_path / "nlu.yml", RASA_YAML)
    result = convert("rasa-yaml", str(tmp_path / "out"), train=[str(nlu)], split="1,0,0")
    assert lines(tmp_path / "out" / "train.jsonl") == [
        row("book a flight to Boston tomorrow", "O O O O B-city O", "book_flight"),
        row("fly from NYC to LA", "O O B-city O B-city", "book_flight"),
        row("what about tomorrow's weather", "O O B-date O", "book_flight"),
        row("hi", "O", "greet"),
        row("good morning !", "B-greeting I-greeting O", "greet"),
    ]
    assert not (tmp_path / "out" / "dev.jsonl").exists()
    assert result.report.kept == 5 and result.report.snapped == 1
    assert result.notes == Counter(
        {
            "synonym sections (kept in entities.json)": 1,
            "regex sections (kept in entities.json)": 1,
            "lookup sections (kept in entities.json)": 1,
            "entities with a role or group (dropped; roles='keep' types them entity.role)": 2,
            "entities with a synonym value (kept in entities.json)": 2,
            "regex/lookup 'zipcode': no slot of that type in the examples (not used, as in Rasa)": 1,
        }
    )
    # Synonyms (inline values and the synonym: block, keys lower-cased as Rasa's), regexes and lookup tables.
    assert json.loads((tmp_path / "out" / "entities.json").read_text(encoding="utf-8")) == {
        "format": "chatft-entities",
        "version": 1,
        "synonyms": {
            "nyc": "New York", "new york": "New York", "good morning": "morning", "morning": "morning",
            "big apple": "New York",
        },
        "regexes": [{"name": "zipcode", "pattern": "[0-9]{5}"}],
        "lookups": [{"name": "city", "elements": ["Boston"]}],
        "value_types": {},
        "currencies": {},
        "language": "en",
    }  # fmt: skip
    out = capsys.readouterr().out
    assert "train: 5 examples, 2 intents, 3 slot types" in out
    assert f"entities: 5 synonyms, 1 regexes, 1 lookup tables -> {tmp_path / 'out' / 'entities.json'}" in out
    assert f"first: {nlu}:8: 'tomorrow' -> \"tomorrow's\" (date)" in out


def test_rasa_yaml_roles_kept_as_entity_dot_role(tmp_path):
    nlu = write(tmp_path / "nlu.yml", RASA_YAML)
    convert("rasa-yaml", str(tmp_path / "out"), train=[str(nlu)], split="1,0,0", roles="keep", quiet=True)
    assert lines(tmp_path / "out" / "train.jsonl")[1] == row(
        "fly from NYC to LA", "O O B-city.from O B-city.to", "book_flight"
    )


def test_rasa_yaml_folder_reads_nlu_files_and_skips_others(tmp_path):
    write(tmp_path / "data" / "nlu" / "a.yml", "nlu:\n- intent: greet\n  examples: |\n    - hi\n")
    write(tmp_path / "data" / "nlu" / "b.yaml", "nlu:\n- intent: bye\n  examples:\n  - text: see you\n")
    write(tmp_path / "data" / "stories.yml", "stories:\n- story: s\n  steps: []\n")
    result = convert(
        "rasa-yaml", str(tmp_path / "out"), train=[str(tmp_path / "data")], split="1,0,0", quiet=True
    )
    assert lines(tmp_path / "out" / "train.jsonl") == [row("hi", None, "greet"), row("see you", None, "bye")]
    assert result.notes["files without an nlu: key (skipped)"] == 1


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        (
            "nlu:\n- intent: greet\n  examples: |\n    - hi\n - intent: bad\n",
            5,
            "malformed YAML (did not find expected key)",
        ),
        (
            'nlu:\n- intent: greet\n  examples: |\n    - hi\n    - to [x]{"entity": city}\n',
            5,
            "is not valid JSON",
        ),
        ("nlu:\n- intent: greet\n  examples: |\n    - hi\n    hello\n", 5, "does not start with '- '"),
        ("nlu:\n- intnt: greet\n  examples: |\n    - hi\n", 2, "expected '- intent: name'"),
    ],
)
def test_rasa_yaml_bad_input_names_file_and_line(tmp_path, text, line, what):
    bad = write(tmp_path / "bad.yml", text)
    with pytest.raises(DataFormatError) as err:
        convert("rasa-yaml", str(tmp_path / "out"), input=[str(bad)], quiet=True)
    assert what in one_line_error(err, f"{bad}:{line}: ")


def test_strict_spans_makes_snapping_an_error(tmp_path):
    nlu = write(tmp_path / "nlu.yml", RASA_YAML)
    with pytest.raises(DataFormatError) as err:
        convert("rasa-yaml", str(tmp_path / "out"), input=[str(nlu)], strict_spans=True, quiet=True)
    assert "does not fall on word boundaries" in one_line_error(err, f"{nlu}:8: span 11-19 'tomorrow' (date)")


# --- rasa-json ---------------------------------------------------------------------------------------------


def test_rasa_json(tmp_path):
    data = {
        "rasa_nlu_data": {
            "common_examples": [
                {
                    "text": "I feel bad",
                    "intent": "inform",
                    "entities": [{"start": 7, "end": 10, "value": "bad", "entity": "mood"}],
                },
                {
                    "text": "12-12",
                    "intent": "dob",
                    "entities": [
                        {"start": 0, "end": 2, "entity": "DD"},
                        {"start": 3, "end": 5, "entity": "MM"},
                    ],
                },
                {"text": "hey", "intent": "greet"},
            ],
            "entity_synonyms": [{"value": "chinese", "synonyms": ["Chines"]}],
            "regex_features": [{"name": "zipcode", "pattern": "[0-9]{5}"}],
        }
    }
    path = write(tmp_path / "nlu.json", json.dumps(data))
    result = convert("rasa-json", str(tmp_path / "out"), train=[str(path)], split="1,0,0", quiet=True)
    assert lines(tmp_path / "out" / "train.jsonl") == [
        row("I feel bad", "O O B-mood", "inform"),
        row("12-12", "B-DD", "dob"),
        row("hey", "O", "greet"),
    ]
    # both spans fall inside the one word "12-12": the first is snapped to it, the second skipped
    assert (result.report.kept, result.report.snapped) == (2, 1)
    assert result.entities.synonyms == {"chines": "chinese", "chinese": "chinese"}
    assert result.entities.regexes == [("zipcode", "[0-9]{5}")]
    assert result.report.skipped == Counter({"shares a word with another span": 1})


def test_rasa_json_span_past_the_end(tmp_path):
    data = {
        "rasa_nlu_data": {
            "common_examples": [
                {"text": "hi", "intent": "g"},
                {"text": "fly", "intent": "f", "entities": [{"start": 0, "end": 9, "entity": "x"}]},
            ]
        }
    }
    path = write(tmp_path / "nlu.json", json.dumps(data))
    with pytest.raises(DataFormatError) as err:
        convert("rasa-json", str(tmp_path / "out"), input=[str(path)], quiet=True)
    one_line_error(err, f"{path}: common_examples[1]: span 0-9 (x) is outside the text (length 3")


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"entity_synonyms": "synonyms.json"}, "entity_synonyms must be a list, got str"),
        ({"entity_synonyms": 3}, "entity_synonyms must be a list, got int"),
        ({"regex_features": {"name": "zip"}}, "regex_features must be a list, got dict"),
        ({"lookup_tables": "cities.txt"}, "lookup_tables must be a list, got str"),
        (
            {"entity_synonyms": [{"value": "chinese", "synonyms": "Chines"}]},
            'entity_synonyms[0]: expected {"value": ..., "synonyms": [...]}',
        ),
    ],
)
def test_rasa_json_resources_of_the_wrong_shape_are_one_line_errors(tmp_path, resources, message):
    """A string was read letter by letter (each letter an entry, or a synonym), a number was a TypeError."""
    data = {"rasa_nlu_data": {"common_examples": [{"text": "hi", "intent": "g"}], **resources}}
    path = write(tmp_path / "nlu.json", json.dumps(data))
    with pytest.raises(DataFormatError) as err:
        convert("rasa-json", str(tmp_path / "out"), input=[str(path)], quiet=True)
    assert str(err.value) == f"{path}: {message}"


def test_malformed_json_names_line(tmp_path):
    path = write(tmp_path / "nlu.json", '{"rasa_nlu_data": {\n  "common_examples": [\n  {"text": "hi",}\n]}}')
    with pytest.raises(DataFormatError) as err:
        convert("rasa-json", str(tmp_path / "out"), input=[str(path)], quiet=True)
    one_line_error(err, f"{path}:3: malformed JSON")


# --- spans-jsonl (doccano, Label Studio) ----------------------------------------------------------------------

DOCCANO = """\
{"id": 1, "text": "Find a flight from Memphis to Tacoma", "entities": [[19, 26, "City"], [30, 36, "City"]], "cats": ["flight"]}
{"id": 2, "text": "airports in Los Angeles?", "entities": [{"id": 5, "label": "City", "start_offset": 12, "end_offset": 23}], "cats": ["airport"]}
{"id": 3, "text": "   ", "entities": [], "cats": ["flight"]}
{"id": 4, "text": "我想订一张去北京的机票", "label": [[6, 8, "City"]], "cats": ["flight"]}
"""


def test_doccano_export(tmp_path):
    path = write(tmp_path / "doccano.jsonl", DOCCANO)
    result = convert("spans-jsonl", str(tmp_path / "out"), train=[str(path)], split="1,0,0", quiet=True)
    assert lines(tmp_path / "out" / "train.jsonl") == [
        row("Find a flight from Memphis to Tacoma", "O O O O B-City O B-City", "flight"),
        row("airports in Los Angeles ?", "O O B-City I-City O", "airport"),
        row("我 想 订 一 张 去 北 京 的 机 票", "O O O O O O B-City I-City O O O", "flight"),
    ]
    assert result.report.empty_texts == 1


@pytest.mark.parametrize(
    ("record", "what"),
    [
        (
            '{"text": "fly to Boston", "entities": [[7, 20, "City"]], "cats": ["f"]}',
            "span 7-20 (City) is outside the text",
        ),
        (
            '{"text": "fly to New York", "entities": [[7, 15, "City"], [11, 15, "State"]], "cats": ["f"]}',
            "spans overlap",
        ),
        ('{"text": "fly to Boston", "entities": [[7, 13, "City"]]}', "no intent"),
        ('{"text": "fly", "cats": ["f"]', "malformed JSON"),
    ],
)
def test_doccano_bad_records_name_file_and_line(tmp_path, record, what):
    path = write(tmp_path / "d.jsonl", '{"text": "hi", "cats": ["greet"]}\n' + record + "\n")
    with pytest.raises(DataFormatError) as err:
        convert("spans-jsonl", str(tmp_path / "out"), input=[str(path)], strict_spans=True, quiet=True)
    assert what in one_line_error(err, f"{path}:2: ")


def test_label_studio_export(tmp_path):
    tasks = [
        {
            "id": 1,
            "data": {"text": "book a table in Paris"},
            "annotations": [
                {"was_cancelled": True, "result": []},
                {
                    "was_cancelled": False,
                    "result": [
                        {
                            "type": "labels",
                            "from_name": "slots",
                            "to_name": "text",
                            "value": {"start": 16, "end": 21, "text": "Paris", "labels": ["city"]},
                        },
                        {
                            "type": "choices",
                            "from_name": "intent",
                            "to_name": "text",
                            "value": {"choices": ["book_table"]},
                        },
                    ],
                },
            ],
        },
        {"id": 2, "data": {"text": "not annotated yet"}, "annotations": []},
        {
            "id": 3,
            "data": {"text": "hello"},
            "annotations": [{"result": [{"type": "choices", "value": {"choices": ["greet"]}}]}],
        },
    ]
    path = write(tmp_path / "ls.json", json.dumps(tasks, indent=1))
    result = convert("spans-jsonl", str(tmp_path / "out"), train=[str(path)], split="1,0,0", quiet=True)
    assert lines(tmp_path / "out" / "train.jsonl") == [
        row("book a table in Paris", "O O O O B-city", "book_table"),
        row("hello", "O", "greet"),
    ]
    assert result.notes["tasks without an annotation (skipped)"] == 1


# --- brackets ------------------------------------------------------------------------------------------------


def test_bracket_lines_with_a_fixed_intent(tmp_path):
    path = write(tmp_path / "alarm.txt", "wake me up at [time : five am] [date : this week]\n\nolly quiet\n")
    convert(
        "brackets", str(tmp_path / "out"), train=[str(path)], intent="alarm_set", split="1,0,0", quiet=True
    )
    assert lines(tmp_path / "out" / "train.jsonl") == [
        row("wake me up at five am this week", "O O O O B-time I-time B-date I-date", "alarm_set"),
        row("olly quiet", "O O", "alarm_set"),
    ]


def test_bracket_massive_jsonl_and_tsv_columns(tmp_path):
    massive = write(
        tmp_path / "massive.jsonl",
        '{"id": "1", "locale": "en-US", "intent": "alarm_set", "utt": "wake me at five am", "annot_utt": "wake me at [time : five am]"}\n'
        '{"id": "2", "locale": "en-US", "intent": "weather_query", "utt": "weather in paris", "annot_utt": "weather in [place_name : paris]"}\n',
    )
    tsv = write(
        tmp_path / "hwu.tsv", "scenario\tanswer\tlabel\nalarm\tremind me [date : tomorrow]\talarm_set\n"
    )
    convert("brackets", str(tmp_path / "m"), train=[str(massive)], split="1,0,0", quiet=True)
    assert lines(tmp_path / "m" / "train.jsonl") == [
        row("wake me at five am", "O O O B-time I-time", "alarm_set"),
        row("weather in paris", "O O B-place_name", "weather_query"),
    ]
    convert("brackets", str(tmp_path / "h"), train=[str(tsv)], column="answer", split="1,0,0", quiet=True)
    assert lines(tmp_path / "h" / "train.jsonl") == [row("remind me tomorrow", "O O B-date", "alarm_set")]


@pytest.mark.parametrize(
    ("line", "what"),
    [
        (
            "wake me at [time : [hour : five] am]",
            "nested '[' at column 20 inside the annotation opened at column 12",
        ),
        ("wake me at [time : five am", "'[' at column 12 is never closed"),
        ("wake me at five] am", "']' at column 16 closes no '['"),
        ("wake me at [five am]", "annotation [five am] at column 12 is not [type : value]"),
    ],
)
def test_bracket_nested_or_malformed_names_file_and_line(tmp_path, line, what):
    path = write(tmp_path / "b.txt", "fine [a : b]\n" + line + "\n")
    with pytest.raises(DataFormatError) as err:
        convert("brackets", str(tmp_path / "out"), input=[str(path)], intent="x", quiet=True)
    assert what in one_line_error(err, f"{path}:2: ")


# --- csv ---------------------------------------------------------------------------------------------------


def test_csv_header_quotes_and_newlines(tmp_path):
    path = write(
        tmp_path / "intents.csv",
        'id,Sentence,Intent\n1,"hello, there",greet\n2,"two\nlines",other\n3,bye,bye\n',
    )
    convert("csv", str(tmp_path / "out"), train=[str(path)], split="1,0,0", quiet=True)
    assert lines(tmp_path / "out" / "train.jsonl") == [
        row("hello , there", None, "greet"),
        row("two lines", None, "other"),
        row("bye", None, "bye"),
    ]


def test_csv_sniffed_delimiter_without_header_and_named_columns(tmp_path):
    plain = write(tmp_path / "a.csv", "book a flight;flight\nhi there;greet\n")
    convert("csv", str(tmp_path / "a"), train=[str(plain)], split="1,0,0", quiet=True)
    assert lines(tmp_path / "a" / "train.jsonl") == [
        row("book a flight", None, "flight"),
        row("hi there", None, "greet"),
    ]
    named = write(tmp_path / "b.csv", "question,topic\nwhere is my card,card\n")
    convert(
        "csv",
        str(tmp_path / "b"),
        train=[str(named)],
        text_column="question",
        label_column="topic",
        split="1,0,0",
        quiet=True,
    )
    assert lines(tmp_path / "b" / "train.jsonl") == [row("where is my card", None, "card")]


def test_csv_short_row_names_its_line(tmp_path):
    path = write(tmp_path / "a.csv", 'text,label\nhi,greet\n"multi\nline",x\nlonely\n')
    with pytest.raises(DataFormatError) as err:
        convert("csv", str(tmp_path / "out"), input=[str(path)], quiet=True)
    one_line_error(err, f"{path}:5: 1 column(s)")


@pytest.mark.parametrize("option", ["text_column", "label_column"])
def test_csv_column_number_zero_is_an_error_not_the_last_column(tmp_path, option):
    """Columns are numbered from 1: 0 once read column -1 (the last one), so the label became the text."""
    path = write(tmp_path / "a.csv", "hello there,greet\nbye now,bye\n")
    with pytest.raises(ConfigError) as err:
        convert("csv", str(tmp_path / "out"), train=[str(path)], split="1,0,0", quiet=True, **{option: "0"})
    assert str(err.value) == f"--{option.replace('_', '-')} '0': columns are numbered from 1"


def test_csv_rows_without_the_label_column_are_one_line_errors(tmp_path):
    """A first row with a label followed by rows without one, and a one-column file given --label-column 1:
    the short row's file:line error, not a ValueError/IndexError from the header guess."""
    path = write(tmp_path / "a.csv", "hello,greet\nx\ny\nz\nw\n")
    with pytest.raises(DataFormatError) as err:
        convert("csv", str(tmp_path / "a"), train=[str(path)], split="1,0,0", quiet=True)
    one_line_error(err, f"{path}:2: 1 column(s), expected the text in column 1 and the label in column 2")
    path = write(tmp_path / "b.csv", "hello\nx\n")
    with pytest.raises(DataFormatError) as err:
        convert("csv", str(tmp_path / "b"), train=[str(path)], split="1,0,0", quiet=True, label_column="1")
    one_line_error(err, f"{path}:1: 1 column(s), expected the text in column 2 and the label in column 1")


def test_csv_a_column_given_by_number_moves_the_other_default(tmp_path):
    """--text-column 2 without a header: the label is column 1 (it was column 2 too: label = text)."""
    path = write(tmp_path / "a.csv", "greet,hello there\nbye,bye now\n")
    convert("csv", str(tmp_path / "a"), train=[str(path)], split="1,0,0", quiet=True, text_column="2")
    assert lines(tmp_path / "a" / "train.jsonl") == [
        row("hello there", None, "greet"),
        row("bye now", None, "bye"),
    ]
    convert("csv", str(tmp_path / "b"), train=[str(path)], split="1,0,0", quiet=True, label_column="1")
    assert lines(tmp_path / "b" / "train.jsonl") == [
        row("hello there", None, "greet"),
        row("bye now", None, "bye"),
    ]


# --- splits, carving, errors ---------------------------------------------------------------------------------


def test_carve_is_stratified_complete_ordered_and_seeded():
    intents = ["a"] * 50 + ["b"] * 30 + ["c"] * 5 + ["d"] + ["e"] * 2 + ["f"] * 12
    intents = [intents[(i * 37) % 100] for i in range(100)]  # interleave the classes
    train, dev, test = carve(intents, [0.8, 0.1, 0.1], seed=0)
    assert (len(train), len(dev), len(test)) == (80, 10, 10)
    assert sorted(train + dev + test) == list(range(100))
    assert train == sorted(train) and dev == sorted(dev) and test == sorted(test)
    assert Counter(intents[i] for i in dev) == Counter({"a": 5, "b": 3, "f": 1, "c": 1})
    assert Counter(intents[i] for i in train)["d"] == 1  # a single example stays in train
    assert carve(intents, [0.8, 0.1, 0.1], seed=0) == [train, dev, test]
    assert carve(intents, [0.8, 0.1, 0.1], seed=1) != [train, dev, test]


def test_given_splits_are_kept_and_missing_dev_is_carved(tmp_path):
    rows_ = "".join(f"utterance number {i},{'ab'[i % 2]}\n" for i in range(20))
    train = write(tmp_path / "train.csv", rows_)
    test = write(tmp_path / "test.csv", "held out,a\n")
    result = convert("csv", str(tmp_path / "out"), train=[str(train)], test=[str(test)], quiet=True)
    assert [len(result.splits[s]) for s in ("train", "dev", "test")] == [18, 2, 1]
    assert lines(tmp_path / "out" / "test.jsonl") == [row("held out", None, "a")]
    words = [tuple(d["words"]) for s in ("train", "dev") for d in lines(tmp_path / "out" / f"{s}.jsonl")]
    assert sorted(words) == sorted(tuple(f"utterance number {i}".split()) for i in range(20))


@pytest.mark.parametrize(
    ("kwargs", "what"),
    [
        ({"from_": "luis"}, "--from 'luis': unknown format"),
        ({"from_": "csv", "split": "0.5,0.5"}, "expected 3 fractions (train,dev,test)"),
        ({"from_": "csv", "roles": "keep"}, "--roles: not an option of --from csv"),
    ],
)
def test_option_errors(tmp_path, kwargs, what):
    path = write(tmp_path / "a.csv", "hi,greet\n")
    with pytest.raises(ConfigError) as err:
        convert(output=str(tmp_path / "out"), input=[str(path)], quiet=True, **kwargs)
    assert what in one_line_error(err, "")


def test_parse_fractions():
    assert parse_fractions("0.9,0.1", ["train", "dev"]) == [0.9, 0.1]
    with pytest.raises(ConfigError):
        parse_fractions("0.9,0.2", ["train", "dev"])


@pytest.mark.skipif(not CLINC.is_file(), reason=f"CLINC150 not found at {CLINC}")
def test_clinc150_keeps_its_splits_with_oos_merged(tmp_path):
    result = convert("clinc", str(tmp_path / "out"), input=[str(CLINC)], quiet=True)
    sizes = {s: len(exs) for s, exs in result.splits.items()}
    assert sizes == {"train": 15000 + 100, "dev": 3000 + 100, "test": 4500 + 1000}
    assert {s: sum(ex.intent == "oos" for ex in exs) for s, exs in result.splits.items()} == {
        "train": 100,
        "dev": 100,
        "test": 1000,
    }
    assert {len({ex.intent for ex in exs}) for exs in result.splits.values()} == {151}
    assert all(ex.tags is None for exs in result.splits.values() for ex in exs)
