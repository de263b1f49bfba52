"""Dialogue data: the format's reader, data convert --from woz, data stats and data check on dialogue folders.

Fixtures are written here, small enough to count by hand; the real WOZ 2.0 test reads ../shared/data/woz2 and
skips with a reason when it is absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatft.cli import main
from chatft.core.errors import DataFormatError
from chatft.dialogue.dialogues import Dialogue, Schema, Turn, read_dialogues, read_schema, write_dialogues

from .conftest import REPO

WOZ2 = REPO.parent / "shared" / "data" / "woz2"


# --- the format's reader -------------------------------------------------------------------------------------

GOOD_TURN = {"system": "", "user": "hi", "state": {}}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not JSON (Expecting property name enclosed in double quotes, column 2)"),
        ("[1, 2]", 'expected {"id": ..., "turns": [...]} with at least one turn'),
        ('{"id": "a", "turns": []}', 'expected {"id": ..., "turns": [...]} with at least one turn'),
        ('{"id": 1.5, "turns": [{"system": "", "user": "hi", "state": {}}]}', "'id' must be a string"),
        (
            '{"id": "a", "turns": ["hi"]}',
            "dialogue 'a' turn 0: a turn must be an object with system, user and state",
        ),
        (
            '{"id": "a", "turns": [{"system": "", "user": "hi", "state": {}, "intent": "x"}]}',
            "dialogue 'a' turn 0: unknown key 'intent' (expected requests, state, system, system_acts, user)",
        ),
        (
            '{"id": "a", "turns": [{"user": "hi", "state": {}}]}',
            "dialogue 'a' turn 0: 'system' must be a string (\"\" for an empty system turn)",
        ),
        (
            '{"id": "a", "turns": [{"system": "", "user": "  ", "state": {}}]}',
            "dialogue 'a' turn 0: 'user' is empty",
        ),
        (
            '{"id": "a", "turns": [{"system": "", "user": "hi", "state": {"area": ""}}]}',
            "dialogue 'a' turn 0: 'state' must be an object of slot -> non-empty string value",
        ),
        (
            '{"id": "a", "turns": [{"system": "", "user": "hi", "state": {}, "system_acts": [["offer", "area"]]}]}',
            'dialogue \'a\' turn 0: system_acts[0] must be ["request", slot] or ["inform", slot, value], '
            "got ['offer', 'area']",
        ),
        (
            '{"id": "a", "turns": [{"system": "", "user": "hi", "state": {}, "requests": "phone"}]}',
            "dialogue 'a' turn 0: 'requests' must be a list of non-empty strings",
        ),
    ],
)
def test_read_dialogues_errors(tmp_path, line, message):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"id": "ok", "turns": [GOOD_TURN]}) + "\n\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        read_dialogues(path)
    assert str(err.value) == f"{path}:3: {message}"


def test_conversations_to_track_need_no_state_and_errors_name_line_and_turn(tmp_path):
    """``states=False`` (``predict --data.predict_file``): turns of system and user only; ids default to the
    position; every other rule (and the one-line errors) as in a split file, a non-UTF-8 line included."""
    path = tmp_path / "conversations.jsonl"
    path.write_text(
        '{"id": "a", "turns": [{"system": "", "user": "hi"}]}\n\n{"turns": [{"system": "", "user": "yo"}]}\n',
        encoding="utf-8",
    )
    assert read_dialogues(path, states=False) == [
        Dialogue("a", (Turn("", "hi", {}),)),
        Dialogue("1", (Turn("", "yo", {}),)),
    ]
    with pytest.raises(DataFormatError) as err:
        read_dialogues(path)
    assert (
        str(err.value)
        == f"{path}:1: dialogue 'a' turn 0: 'state' must be an object of slot -> non-empty string value"
    )
    for line, message in (
        (
            '{"turns": [{"system": "", "user": "hi"}, {"system": "ok"}]}',
            "dialogue '0' turn 1: 'user' must be a string",
        ),
        ('{"turns": [{"system": "", "user": "hi", "stat": {}}]}', "dialogue '0' turn 0: unknown key 'stat'"),
        ('{"turns": [{"system": "", "user": " "}]}', "dialogue '0' turn 0: 'user' is empty"),
    ):
        path.write_text(line + "\n", encoding="utf-8")
        with pytest.raises(DataFormatError) as err:
            read_dialogues(path, states=False)
        assert str(err.value).startswith(f"{path}:1: {message}")
    path.write_bytes(
        b'{"turns": [{"system": "", "user": "hi"}]}\n{"turns": [{"system": "", "user": "caf\xe9"}]}\n'
    )
    with pytest.raises(DataFormatError) as err:
        read_dialogues(path, states=False)
    assert str(err.value) == f"{path}:2: not UTF-8 text (byte 39 of the line)"


def test_read_dialogues_duplicate_id(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(
        json.dumps({"id": "a", "turns": [GOOD_TURN]}) + "\n" + json.dumps({"id": "a", "turns": [GOOD_TURN]})
    )
    with pytest.raises(DataFormatError) as err:
        read_dialogues(path)
    assert str(err.value) == f"{path}:2: dialogue id 'a' already used on line 1"


def test_dialogues_round_trip(tmp_path):
    dialogues = [
        Dialogue(
            "d1",
            (
                Turn("", "Any part of town, cheap please", {"area": "dontcare", "price": "cheap"}),
                Turn(
                    "Café Uno?",
                    "Yes, the phone?",
                    {"area": "dontcare", "price": "cheap"},
                    (("inform", "name", "café uno"),),
                    ("phone",),
                ),
            ),
        )
    ]
    path = tmp_path / "dev.jsonl"
    write_dialogues(path, dialogues)
    assert path.read_text(encoding="utf-8") == (
        '{"id": "d1", "turns": [{"system": "", "user": "Any part of town, cheap please", "state": {"area": '
        '"dontcare", "price": "cheap"}}, {"system": "Café Uno?", "user": "Yes, the phone?", "state": {"area": '
        '"dontcare", "price": "cheap"}, "system_acts": [["inform", "name", "café uno"]], "requests": ["phone"]}]}\n'
    )
    assert read_dialogues(path) == dialogues


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "{path}:1: not JSON (Expecting property name enclosed in double quotes)"),
        (
            '{"informable": {}}',
            '{path}: expected {"informable": {slot: [values] or null}, "requestable": [...]}',
        ),
        (
            '{"informable": {"area": "north"}}',
            "{path}: informable['area'] must be a list of non-empty strings",
        ),
        (
            '{"informable": {"area": null}, "requestable": [""]}',
            "{path}: 'requestable' must be a list of non-empty strings",
        ),
    ],
)
def test_read_schema_errors(tmp_path, text, message):
    path = tmp_path / "schema.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        read_schema(path)
    assert str(err.value) == message.replace("{path}", str(path))


# --- a WOZ 2.0 fixture ----------------------------------------------------------------------------------------


def _turn(user, system="", acts=(), inform=(), request=()):
    beliefs = [{"slots": [list(p)], "act": "inform"} for p in inform]
    beliefs += [{"slots": [["slot", r]], "act": "request"} for r in request]
    return {
        "transcript": user,
        "system_transcript": system,
        "system_acts": list(acts),
        "belief_state": beliefs,
    }


ONTOLOGY = {
    "informable": {
        "food": ["chinese", "italian", "thai"],
        "area": ["centre", "north"],
        "price range": ["cheap", "expensive"],
        "request": ["address", "phone"],
    },
    "requestable": ["address", "phone", "area", "food", "price range"],
}
CHINESE = [("food", "chinese"), ("area", "centre")]
TRAIN = [
    {
        "dialogue_idx": 0,
        "dialogue": [
            _turn("I want chinese food in the centre.", inform=CHINESE),
            _turn(
                "Any price is fine.",
                "Do you have a price range in mind?",
                ["price range"],
                [*CHINESE, ("price range", "dontcare")],
            ),
            _turn(
                "What is the phone number and address?",
                "Golden Wok is a chinese restaurant in the centre.",
                [["food", "chinese"]],
                [*CHINESE, ("price range", "dontcare")],
                ["phone", "address"],
            ),
        ],
    },
    {
        "dialogue_idx": 1,
        "dialogue": [  # 'center': outside the ontology's list; thai: the system's offer
            _turn(
                "Something cheap in the center please.", inform=[("price range", "cheap"), ("area", "center")]
            ),
            _turn(
                "Yes.",
                "Would you like thai food?",
                [["food", "thai"]],
                [("price range", "cheap"), ("area", "center"), ("food", "thai")],
            ),
        ],
    },
    {
        "dialogue_idx": 2,
        "dialogue": [  # 'parking': a slot the ontology lacks; postcode: not requestable
            _turn("I need a place with parking.", inform=[("parking", "yes")]),
            _turn(
                "Italian, and what is the postcode?",
                "What food would you like?",
                ["food"],
                [("parking", "yes"), ("food", "italian")],
                ["postcode"],
            ),
        ],
    },
]
DEV = [
    {
        "dialogue_idx": 0,
        "dialogue": [
            _turn(
                "Expensive italian food in the north.",
                inform=[("food", "italian"), ("price range", "expensive"), ("area", "north")],
            ),
            _turn(
                "",
                "Ciao Roma serves italian food in the north.",
                [],
                [("food", "italian"), ("price range", "expensive"), ("area", "north")],
            ),
        ],
    },
]


def write_fixture(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in (("train.json", TRAIN), ("dev.json", DEV), ("ontology.json", ONTOLOGY)):
        (folder / name).write_text(json.dumps(data), encoding="utf-8")
    return folder


C_STATE = {"food": "chinese", "area": "centre"}
C_DONTCARE = {**C_STATE, "price range": "dontcare"}
TRAIN_LINES = [
    {
        "id": "train-0",
        "turns": [
            {"system": "", "user": "I want chinese food in the centre.", "state": C_STATE},
            {
                "system": "Do you have a price range in mind?",
                "user": "Any price is fine.",
                "state": C_DONTCARE,
                "system_acts": [["request", "price range"]],
            },
            {
                "system": "Golden Wok is a chinese restaurant in the centre.",
                "user": "What is the phone number and address?",
                "state": C_DONTCARE,
                "system_acts": [["inform", "food", "chinese"]],
                "requests": ["phone", "address"],
            },
        ],
    },
    {
        "id": "train-1",
        "turns": [
            {
                "system": "",
                "user": "Something cheap in the center please.",
                "state": {"price range": "cheap", "area": "center"},
            },
            {
                "system": "Would you like thai food?",
                "user": "Yes.",
                "state": {"price range": "cheap", "area": "center", "food": "thai"},
                "system_acts": [["inform", "food", "thai"]],
            },
        ],
    },
    {
        "id": "train-2",
        "turns": [
            {"system": "", "user": "I need a place with parking.", "state": {"parking": "yes"}},
            {
                "system": "What food would you like?",
                "user": "Italian, and what is the postcode?",
                "state": {"parking": "yes", "food": "italian"},
                "system_acts": [["request", "food"]],
                "requests": ["postcode"],
            },
        ],
    },
]
N_STATE = {"food": "italian", "price range": "expensive", "area": "north"}
DEV_LINES = [
    {
        "id": "dev-0",
        "turns": [
            {"system": "", "user": "Expensive italian food in the north.", "state": N_STATE},
            {"system": "Ciao Roma serves italian food in the north.", "user": "...", "state": N_STATE},
        ],
    },
]
SCHEMA = {
    "informable": {
        "food": ["chinese", "italian", "thai"],
        "area": ["centre", "north"],
        "price range": ["cheap", "expensive"],
    },
    "requestable": ["address", "phone", "area", "food", "price range"],
}


def jsonl(objs: list[dict]) -> str:
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs)


@pytest.fixture()
def woz(tmp_path, capsys) -> Path:
    """The fixture converted with its ontology into ``tmp_path/out`` (the summary read off)."""
    src = write_fixture(tmp_path / "woz")
    main(
        [
            "data",
            "convert",
            "--from",
            "woz",
            "--train",
            str(src / "train.json"),
            "--dev",
            str(src / "dev.json"),
            "--ontology",
            str(src / "ontology.json"),
            "--output",
            str(tmp_path / "out"),
        ]
    )
    capsys.readouterr()
    return tmp_path / "out"


def test_convert_woz_files_and_summary(tmp_path, capsys):
    src = write_fixture(tmp_path / "woz")
    out = tmp_path / "out"
    main(
        [
            "data",
            "convert",
            "--from",
            "woz",
            "--train",
            str(src / "train.json"),
            "--dev",
            str(src / "dev.json"),
            "--ontology",
            str(src / "ontology.json"),
            "--output",
            str(out),
        ]
    )
    assert capsys.readouterr().out.splitlines() == [
        f"train: 3 dialogues, 7 turns -> {out / 'train.jsonl'}",
        f"dev: 1 dialogues, 2 turns -> {out / 'dev.jsonl'}",
        "test: 0 dialogues, 0 turns (empty: not written)",
        "schema: informable food (3 values), area (2 values), price range (2 values); requestable address, phone, "
        f"area, food, price range -> {out / 'schema.json'}",
        "note: informable slots the ontology does not list ('parking'): 2",
        "note: requests for a slot the ontology does not list as requestable ('postcode'): 1",
        "note: turns with an empty user transcript (kept as '...'): 1",
        "note: values outside the ontology's list (area='center'): 2",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "woz"]  # no temporary folder left
    assert sorted(p.name for p in out.iterdir()) == ["dev.jsonl", "schema.json", "train.jsonl"]
    assert (out / "train.jsonl").read_text(encoding="utf-8") == jsonl(TRAIN_LINES)
    assert (out / "dev.jsonl").read_text(encoding="utf-8") == jsonl(DEV_LINES)
    assert (out / "schema.json").read_text(encoding="utf-8") == json.dumps(SCHEMA, indent=1) + "\n"


def test_convert_woz_without_ontology_infers_open_slots(tmp_path, capsys):
    src = write_fixture(tmp_path / "woz")
    out = tmp_path / "out"
    main(
        [
            "data",
            "convert",
            "--from",
            "woz",
            "--train",
            str(src / "train.json"),
            "--dev",
            str(src / "dev.json"),
            "--output",
            str(out),
        ]
    )
    assert capsys.readouterr().out.splitlines()[3:] == [
        "schema: informable area (open), food (open), parking (open), price range (open); requestable address, "
        f"phone, postcode -> {out / 'schema.json'}",
        "note: turns with an empty user transcript (kept as '...'): 1",
    ]
    assert json.loads((out / "schema.json").read_text()) == {
        "informable": {"area": None, "food": None, "parking": None, "price range": None},
        "requestable": ["address", "phone", "postcode"],
    }


def test_convert_woz_input_carves_whole_dialogues_seeded(tmp_path, capsys):
    src = write_fixture(tmp_path / "woz")
    outs = []
    for seed, name in ((0, "a"), (0, "b"), (1, "c")):
        out = tmp_path / name
        main(
            [
                "data",
                "convert",
                "--from",
                "woz",
                "--input",
                str(src / "train.json"),
                "--split",
                "0.34,0.33,0.33",
                "--seed",
                str(seed),
                "--output",
                str(out),
            ]
        )
        outs.append(
            {
                s: [json.loads(line)["id"] for line in (out / f"{s}.jsonl").read_text().splitlines()]
                for s in ("train", "dev", "test")
            }
        )
    capsys.readouterr()
    # ids from --input are the file's stem and the dialogue_idx; every turn of a dialogue stays with it
    assert outs[0] == outs[1] == {"train": ["train-1"], "dev": ["train-0"], "test": ["train-2"]}
    assert outs[2] == {"train": ["train-0"], "dev": ["train-1"], "test": ["train-2"]}
    assert (tmp_path / "a" / "train.jsonl").read_text(encoding="utf-8") == jsonl(TRAIN_LINES[1:2])


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["--from", "woz", "--input", "t.json", "--lenient"],
            "chatft: error: --lenient: not an option of --from woz",
        ),
        (
            ["--from", "woz", "--input", "t.json", "--column", "x"],
            "chatft: error: --column: not an option of --from woz",
        ),
        (
            ["--from", "csv", "--input", "t.json", "--ontology", "o.json"],
            "chatft: error: --ontology: not an option of --from csv (only of --from woz)",
        ),
        (
            ["--from", "woz", "--train", "t.json", "--dev", "t.json", "--split", "0.9,0.1"],
            "chatft: error: --split: dev (and test, with --input) were given, so there is nothing to carve",
        ),
    ],
)
def test_convert_woz_option_errors(tmp_path, capsys, monkeypatch, args, error):
    (tmp_path / "t.json").write_text(json.dumps(TRAIN), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["data", "convert", *args, "--output", str(tmp_path / "out")])
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines() == [error]
    assert not (tmp_path / "out").exists()


def test_nlu_and_dialogue_conversions_do_not_overwrite_each_other(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.json").write_text(json.dumps(TRAIN), encoding="utf-8")
    (tmp_path / "t.csv").write_text("text,label\nhi,greet\nbye,bye\n", encoding="utf-8")
    main(["data", "convert", "--from", "woz", "--input", "t.json", "--output", "dlg"])
    main(["data", "convert", "--from", "csv", "--input", "t.csv", "--split", "1,0,0", "--output", "nlu"])
    capsys.readouterr()
    for args in (
        ["--from", "csv", "--input", "t.csv", "--output", "dlg"],
        ["--from", "woz", "--input", "t.json", "--output", "nlu"],
    ):
        with pytest.raises(SystemExit):
            main(["data", "convert", *args])
    assert capsys.readouterr().err.splitlines() == [
        "chatft: error: dlg: already holds a dialogue folder (schema.json); choose a new folder",
        "chatft: error: nlu: already holds NLU data (train.jsonl without schema.json); choose a new folder",
    ]


def test_convert_woz_malformed_input_writes_nothing(tmp_path):
    """A real process: exit 2, one line naming file and dialogue/turn, the output folder left as it was."""
    src = write_fixture(tmp_path / "woz")
    broken = json.loads(json.dumps(TRAIN))
    broken[2]["dialogue"][1]["belief_state"] = {"food": "italian"}
    (src / "broken.json").write_text(json.dumps(broken), encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    (out / "schema.json").write_text("old", encoding="utf-8")
    (out / "train.jsonl").write_text("old", encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "chatft",
            "data",
            "convert",
            "--from",
            "woz",
            "--train",
            "woz/train.json",
            "--dev",
            "woz/dev.json",
            "--test",
            "woz/broken.json",
            "--output",
            "out",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        "chatft: error: woz/broken.json: dialogue 2 turn 1: 'belief_state' must be a list of {act, slots} entries\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "woz"]
    assert {p.name: p.read_text() for p in out.iterdir()} == {"schema.json": "old", "train.jsonl": "old"}


SLOT_KEYS = (
    "set",
    "dontcare",
    "changes_per_turn",
    "removals",
    "values",
    "updates",
    "in_user",
    "in_system",
    "neither",
)


def slot(*values) -> dict:
    return dict(zip(SLOT_KEYS, values, strict=True))


# --- data stats -----------------------------------------------------------------------------------------------


def test_stats_json(woz, capsys):
    main(["data", "stats", str(woz), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result == {
        "data_dir": str(woz),
        "format": "dialogues",
        "schema": {
            "informable": {"food": 3, "area": 2, "price range": 2},
            "requestable": ["address", "phone", "area", "food", "price range"],
        },
        "splits": {
            "train": {
                "dialogues": 3,
                "turns": 7,
                "turns_per_dialogue": {"min": 2, "p50": 2, "mean": 2.33, "max": 3},
                "slots": {
                    # 5 of 7 turns set; set on 3 turns: chinese and italian said by the user, thai offered
                    "food": slot(0.7143, 0.0, 0.4286, 0, 3, 3, 0.6667, 0.3333, 0.0),
                    "area": slot(0.7143, 0.0, 0.2857, 0, 2, 2, 1.0, 0.0, 0.0),
                    "price range": slot(0.5714, 0.2857, 0.2857, 0, 1, 1, 1.0, 0.0, 0.0),
                    "parking": slot(0.2857, 0.0, 0.1429, 0, 1, 1, 0.0, 0.0, 1.0),
                },
                "requests": {"address": 1, "phone": 1, "area": 0, "food": 0, "price range": 0, "postcode": 1},
                "turns_with_requests": 2,
            },
            "dev": {
                "dialogues": 1,
                "turns": 2,
                "turns_per_dialogue": {"min": 2, "p50": 2, "mean": 2.0, "max": 2},
                "slots": {
                    "food": slot(1.0, 0.0, 0.5, 0, 1, 1, 1.0, 0.0, 0.0),
                    "area": slot(1.0, 0.0, 0.5, 0, 1, 1, 1.0, 0.0, 0.0),
                    "price range": slot(1.0, 0.0, 0.5, 0, 1, 1, 1.0, 0.0, 0.0),
                },
                "requests": {"address": 0, "phone": 0, "area": 0, "food": 0, "price range": 0},
                "turns_with_requests": 0,
            },
        },
        "warnings": ["test: no test split (it is optional: only `test` reads it)"],
    }


def test_stats_table(woz, capsys):
    main(["data", "stats", str(woz)])
    assert (
        capsys.readouterr().out
        == f"""\
{woz} (dialogues)
schema: informable food (3 values), area (2 values), price range (2 values); requestable address, phone, area, food, price range

split  dialogues  turns  turns/dialogue min/p50/mean/max
--------------------------------------------------------
train          3      7                       2/2/2.33/3
dev            1      2                       2/2/2.00/2

train: per slot, share of turns; where each update's value appears verbatim
slot           set dontcare changes/turn removals values updates in user in system neither
------------------------------------------------------------------------------------------
food         71.4%     0.0%         0.43        0      3       3   66.7%     33.3%    0.0%
area         71.4%     0.0%         0.29        0      2       2  100.0%      0.0%    0.0%
price range  57.1%    28.6%         0.29        0      1       1  100.0%      0.0%    0.0%
parking      28.6%     0.0%         0.14        0      1       1    0.0%      0.0%  100.0%
requests (2 turns with any): address 1, phone 1, area 0, food 0, price range 0, postcode 1

dev: per slot, share of turns; where each update's value appears verbatim
slot           set dontcare changes/turn removals values updates in user in system neither
------------------------------------------------------------------------------------------
food        100.0%     0.0%         0.50        0      1       1  100.0%      0.0%    0.0%
area        100.0%     0.0%         0.50        0      1       1  100.0%      0.0%    0.0%
price range 100.0%     0.0%         0.50        0      1       1  100.0%      0.0%    0.0%
requests (0 turns with any): address 0, phone 0, area 0, food 0, price range 0
warning: test: no test split (it is optional: only `test` reads it)
"""
    )


def test_stats_plot_refused_for_dialogues(woz, capsys):
    with pytest.raises(SystemExit):
        main(["data", "stats", str(woz), "--plot", str(woz / "p.png")])
    assert (
        capsys.readouterr().err
        == "chatft: error: --plot: not available for a dialogue folder (only for NLU data)\n"
    )


# --- data check -----------------------------------------------------------------------------------------------


def test_check_lists_problems_and_exits_2(woz, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["data", "check", str(woz)])
    assert exc.value.code == 2
    train, dev = woz / "train.jsonl", woz / "dev.jsonl"
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "warning: test: no test split (it is optional: only `test` reads it)",
        f"warning: {dev}:1: dialogue 'dev-0' turn 1: user said '...'",
        f"error: {train}:2: dialogue 'train-1' turn 0: area='center' is not one of schema.json's values of 'area'",
        f"error: {train}:3: dialogue 'train-2' turn 0: slot 'parking' is not an informable slot of schema.json",
        f"error: {train}:3: dialogue 'train-2' turn 1: request 'postcode' is not a requestable slot of schema.json",
        f"chatft: error: {woz}: 3 problems to fix (1 values outside the schema's list; 1 slots not in the schema; "
        "1 requests for slots that are not requestable), listed above",
    ]


def _folder(root: Path, train: list[dict], dev: list[dict], schema: dict) -> Path:
    root.mkdir()
    (root / "train.jsonl").write_text(jsonl(train), encoding="utf-8")
    (root / "dev.jsonl").write_text("\n" + jsonl(dev), encoding="utf-8")  # a blank line: lines still counted
    (root / "schema.json").write_text(json.dumps(schema), encoding="utf-8")
    return root


REMOVAL = {
    "id": "a",
    "turns": [
        {"system": "", "user": "cheap please", "state": {"price": "cheap"}},
        {"system": "Cheap ones are far.", "user": "then forget the price", "state": {}},
    ],
}
OTHER = {"id": "b", "turns": [{"system": "", "user": "anything cheap", "state": {"price": "dontcare"}}]}


def test_check_duplicate_ids_and_removals(tmp_path, capsys):
    folder = _folder(
        tmp_path / "d",
        [REMOVAL, OTHER],
        [{**OTHER, "id": "a"}],
        {"informable": {"price": ["cheap"]}, "requestable": []},
    )
    with pytest.raises(SystemExit):
        main(["data", "check", str(folder)])
    assert capsys.readouterr().err.splitlines() == [
        "warning: test: no test split (it is optional: only `test` reads it)",
        f"warning: {folder / 'train.jsonl'}:1: dialogue 'a' turn 1: price='cheap' dropped",
        f"error: {folder / 'dev.jsonl'}:2: dialogue 'a': id also used at {folder / 'train.jsonl'}:1",
        f"chatft: error: {folder}: 1 problem to fix (1 dialogue ids used in two splits), listed above",
    ]


def test_check_ok(tmp_path, capsys):
    folder = _folder(tmp_path / "d", [REMOVAL], [OTHER], {"informable": {"price": None}, "requestable": []})
    main(["data", "check", str(folder)])
    captured = capsys.readouterr()
    assert (
        captured.out == f"ok: {folder} (dialogues): train 1 dialogues (2 turns), dev 1 dialogues (1 turns); "
        "1 informable slots, 0 requestable\n"
    )
    assert captured.err.splitlines() == [
        "warning: test: no test split (it is optional: only `test` reads it)",
        f"warning: {folder / 'train.jsonl'}:1: dialogue 'a' turn 1: price='cheap' dropped",
    ]


def test_check_format_error_is_one_line(tmp_path, capsys):
    folder = _folder(
        tmp_path / "d",
        [REMOVAL],
        [{"id": "x", "turns": [{"system": "", "user": "", "state": {}}]}],
        {"informable": {"price": None}},
    )
    with pytest.raises(SystemExit) as exc:
        main(["data", "check", str(folder)])
    assert exc.value.code == 2
    assert (
        capsys.readouterr().err
        == f"chatft: error: {folder / 'dev.jsonl'}:2: dialogue 'x' turn 0: 'user' is empty\n"
    )


# --- the real WOZ 2.0 -----------------------------------------------------------------------------------------


@pytest.mark.skipif(not (WOZ2 / "train.json").is_file(), reason=f"WOZ 2.0 not found at {WOZ2}")
def test_convert_real_woz2(tmp_path, capsys):
    out = tmp_path / "woz"
    main(
        [
            "data",
            "convert",
            "--from",
            "woz",
            "--train",
            str(WOZ2 / "train.json"),
            "--dev",
            str(WOZ2 / "validate.json"),
            "--ontology",
            str(WOZ2 / "ontology.json"),
            "--output",
            str(out),
        ]
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        f"train: 600 dialogues, 2536 turns -> {out / 'train.jsonl'}",
        f"dev: 200 dialogues, 830 turns -> {out / 'dev.jsonl'}",
        "test: 0 dialogues, 0 turns (empty: not written)",
    ]
    assert lines[4:] == ["note: values outside the ontology's list (area='center'): 3"]
    schema = read_schema(out / "schema.json")
    assert {s: len(v) for s, v in schema.informable.items()} == {"food": 91, "price range": 3, "area": 5}
    assert schema == Schema(
        schema.informable, ("address", "area", "food", "phone", "price range", "postcode", "name")
    )
    assert [len(read_dialogues(out / f)) for f in ("train.jsonl", "dev.jsonl")] == [600, 200]
