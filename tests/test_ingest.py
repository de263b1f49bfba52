"""No silent ingest mistakes: broken annotations, header rows, tiny dev splits, Rasa data given to fit/check.

Each user mistake is shown with its exact one-line message (function level, or a real ``python -m chatft``
process where the exit code matters).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatft.core.errors import ConfigError, DataFormatError
from chatft.core.formats import detect_format
from chatft.data_tools import csv_table
from chatft.data_tools.carve import MIN_DEV_UTTERANCES
from chatft.data_tools.convert import convert
from chatft.data_tools.ingest import prepare, rasa_input
from chatft.data_tools.notes import summary_lines

from .conftest import REPO, cli_args


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def words(path: Path) -> list[tuple[str, str]]:
    return [
        (" ".join(d["words"]), d["intent"])
        for d in (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines())
    ]


def chatft(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "chatft", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


def nlu(example: str) -> str:
    return f"nlu:\n- intent: pay\n  examples: |\n    - fine [5](amount)\n    - {example}\n"


# --- broken Rasa annotations ------------------------------------------------------------------------------

HINT = " (data convert --lenient keeps it as words)"


@pytest.mark.parametrize(
    ("example", "problem"),
    [
        ("send [50(amount) to Mary", "'[' before '50(amount) to Mary' is never closed"),
        ("send [50](amount to Mary", "'(' after [50] is never closed"),
        ('send {"entity": "amount"} to Mary', '{"entity": "amount"} has no [text] before it'),
        ("send 50(amount) to Mary", "(amount) has no [text] (write [50](amount))"),
        ("send [50] to Mary", "[50] has no (entity) right after it"),
        ("send 50] to Mary", "']' closes no '['"),
        ("send [](amount) to Mary", "[] has no text"),
        ('send [50]{"entity": "amount" to Mary', "'{' after [50] is never closed"),
        ("send [[50](amount)] to Mary", "'[' before '' is never closed"),
    ],
)
def test_broken_rasa_annotation_is_one_line_error(tmp_path, example, problem):
    path = write(tmp_path / "nlu.yml", nlu(example))
    with pytest.raises(DataFormatError) as err:
        convert("rasa-yaml", str(tmp_path / "out"), input=[str(path)], quiet=True)
    assert str(err.value) == f"{path}:5: broken entity annotation in {example!r}: {problem}{HINT}"


@pytest.mark.parametrize(
    "example",
    ["buy item(s) and box(es)", "call me (maybe) {name}", '[50](amount) and [Mary]{"entity": "person"}'],
)
def test_text_that_only_looks_like_annotations_is_fine(tmp_path, example):
    path = write(tmp_path / "nlu.yml", nlu(example))
    result = convert("rasa-yaml", str(tmp_path / "out"), input=[str(path)], split="1,0,0", quiet=True)
    assert len(result.splits["train"]) == 2 and summary_lines(result.notes) == []


def test_lenient_keeps_broken_annotations_as_words_and_says_where(tmp_path, capsys):
    path = write(
        tmp_path / "nlu.yml",
        nlu("send [50(amount) to Mary") + '    - send {"entity": "amount"} to Mary\n    - pay [Bob](person\n',
    )
    convert("rasa-yaml", str(tmp_path / "out"), input=[str(path)], split="1,0,0", lenient=True)
    assert words(tmp_path / "out" / "train.jsonl") == [
        ("fine 5", "pay"),
        ("send [ 50(amount ) to Mary", "pay"),
        ('send { " entity " : " amount " } to Mary', "pay"),
        ("pay [ Bob](person", "pay"),
    ]
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"warning: 3 broken annotations kept as literal words (--lenient): {path}:5: '[' before "
        f'\'50(amount) to Mary\' is never closed; {path}:6: {{"entity": "amount"}} has no [text] before it; '
        f"{path}:7: '(' after [Bob] is never closed"
    )


def test_brackets_format_lenient_and_rasa_hint(tmp_path):
    path = write(tmp_path / "b.txt", "wake me at [time : five am]\nwake me at [five am](time)\n")
    with pytest.raises(DataFormatError) as err:
        convert("brackets", str(tmp_path / "out"), input=[str(path)], intent="alarm", quiet=True)
    assert str(err.value) == (
        f"{path}:2: annotation [five am] at column 12 is not [type : value] (Rasa's [text](entity) is "
        "--from rasa-yaml) (data convert --lenient keeps the line as words)"
    )
    result = convert(
        "brackets",
        str(tmp_path / "out"),
        input=[str(path)],
        intent="alarm",
        split="1,0,0",
        lenient=True,
        quiet=True,
    )
    assert words(tmp_path / "out" / "train.jsonl") == [
        ("wake me at five am", "alarm"),
        ("wake me at [ five am](time )", "alarm"),
    ]
    assert summary_lines(result.notes) == [
        f"warning: 1 broken annotations kept as literal words (--lenient): {path}:2: annotation [five am] at "
        "column 12 is not [type : value] (Rasa's [text](entity) is --from rasa-yaml)"
    ]


def test_lenient_is_not_an_option_of_csv(tmp_path):
    path = write(tmp_path / "a.csv", "hi,greet\n")
    with pytest.raises(ConfigError) as err:
        convert("csv", str(tmp_path / "out"), input=[str(path)], lenient=True, quiet=True)
    assert str(err.value) == "--lenient: not an option of --from csv"


# --- header rows ------------------------------------------------------------------------------------------

BODY = "hi there,greet\nhello,greet\nbye now,bye\nsee you,bye\n"


@pytest.mark.parametrize(
    ("first", "delimiter", "header"),
    [
        ("Customer Query,Intent Name", ",", True),  # the file: header words in both cells
        ("Customer Query;Intent Name", ";", True),
        ("Customer Query\tIntent Name", "\t", True),
        ("Customer Query|Intent Name", "|", True),
        ("utteranceText,intentLabel", ",", True),  # camelCase words
        ("Question,Topic", ",", True),
        ("sentence,Absicht", ",", True),  # one exact name, a label no other row has
        ("text,greet", ",", False),  # its label is another row's: data
        ("send a message,send_message", ",", False),  # a header word in the text cell only: data
        ("query my balance,check_balance", ",", False),
        ("hello,welcome", ",", False),  # no header word: data
        ("where is the text?,intent", ",", False),  # a question is not a column name
    ],
)
def test_header_rule(tmp_path, first, delimiter, header):
    table = [
        (n + 1, line.split(delimiter))
        for n, line in enumerate([first, *BODY.replace(",", delimiter).split("\n")[:-1]])
    ]
    assert csv_table.is_header(table, 1) is header


def test_header_recognised_in_every_delimiter_and_shown(tmp_path):
    for name, delimiter in (("a.csv", ","), ("b.csv", ";"), ("c.tsv", "\t"), ("d.csv", "|")):
        text = f"Customer Query{delimiter}Intent Name\n" + BODY.replace(",", delimiter)
        path = write(tmp_path / name, text)
        result = convert("csv", str(tmp_path / name[0]), input=[str(path)], split="1,0,0", quiet=True)
        assert words(tmp_path / name[0] / "train.jsonl") == [
            ("hi there", "greet"),
            ("hello", "greet"),
            ("bye now", "bye"),
            ("see you", "bye"),
        ]
        assert summary_lines(result.notes) == [
            f"note: 1 header rows (not read as examples): {path}:1: 'Customer Query' | 'Intent Name'"
        ]


def test_header_columns_in_any_order(tmp_path):
    path = write(tmp_path / "a.csv", "id,Intent Name,Customer Query\n1,greet,hi there\n2,bye,see you\n")
    convert("csv", str(tmp_path / "out"), input=[str(path)], split="1,0,0", quiet=True)
    assert words(tmp_path / "out" / "train.jsonl") == [("hi there", "greet"), ("see you", "bye")]


def test_first_row_that_may_be_a_header_is_warned_about(tmp_path):
    path = write(tmp_path / "de.csv", "Frage,Absicht\n" + BODY)
    result = convert("csv", str(tmp_path / "out"), input=[str(path)], split="1,0,0", quiet=True)
    assert words(tmp_path / "out" / "train.jsonl")[0] == ("Frage", "Absicht")
    assert summary_lines(result.notes) == [
        f"warning: 1 first rows read as examples that may be headers: {path}:1: 'Frage' | 'Absicht' (its label "
        "is the only one-example class; if it is a header, say so with --label-column 'Absicht')"
    ]
    convert(
        "csv", str(tmp_path / "out"), input=[str(path)], label_column="Absicht", split="1,0,0", quiet=True
    )
    assert words(tmp_path / "out" / "train.jsonl")[0] == ("hi there", "greet")


def test_brackets_table_header_without_column_options(tmp_path):
    path = write(
        tmp_path / "a.csv",
        "Intent Name,Annotated Utterance\nalarm_set,wake me at [time : five am]\nweather,rain in [place : paris]\n",
    )
    result = convert("brackets", str(tmp_path / "out"), input=[str(path)], split="1,0,0", quiet=True)
    assert words(tmp_path / "out" / "train.jsonl") == [
        ("wake me at five am", "alarm_set"),
        ("rain in paris", "weather"),
    ]
    assert summary_lines(result.notes) == [
        f"note: 1 header rows (not read as examples): {path}:1: 'Intent Name' | 'Annotated Utterance'"
    ]


def test_brackets_tables_pick_columns_by_the_csv_rule(tmp_path):
    # One column rule for csv and brackets tables (csv_table.table_columns). Before, brackets had its own:
    # --column 2 left the intent in column 2 too (the annotated text read as the intent), --column 0 read the
    # last column, and a header named a column only in its exact case.
    path = write(
        tmp_path / "a.csv", "alarm_set,wake me at [time : five am]\nweather,rain in [place : paris]\n"
    )
    convert("brackets", str(tmp_path / "n"), input=[str(path)], column="2", split="1,0,0", quiet=True)
    assert words(tmp_path / "n" / "train.jsonl") == [
        ("wake me at five am", "alarm_set"),
        ("rain in paris", "weather"),
    ]
    with pytest.raises(ConfigError) as err:
        convert("brackets", str(tmp_path / "z"), input=[str(path)], column="0", quiet=True)
    assert str(err.value) == "--column '0': columns are numbered from 1"
    cased = write(
        tmp_path / "b.tsv", "Scenario\tAnswer\tLabel\nalarm\tremind me [date : tomorrow]\talarm_set\n"
    )
    convert("brackets", str(tmp_path / "c"), input=[str(cased)], column="answer", split="1,0,0", quiet=True)
    assert words(tmp_path / "c" / "train.jsonl") == [("remind me tomorrow", "alarm_set")]


# --- tiny dev splits ---------------------------------------------------------------------------------------


def test_tiny_carved_dev_is_reported(tmp_path, capsys):
    assert MIN_DEV_UTTERANCES == 50
    rows = "".join(f"utterance {i},{'abc'[i % 3]}\n" for i in range(123))
    result = convert("csv", str(tmp_path / "out"), input=[str(write(tmp_path / "a.csv", rows))])
    assert [len(result.splits[s]) for s in ("train", "dev", "test")] == [99, 12, 12]
    assert capsys.readouterr().out.splitlines()[-1] == (
        "warning: dev: 12 utterances carved from 123 (fewer than 50): checkpoint choice, early stopping and "
        "calibration on so few are noisy (one utterance = 8.3 points of dev accuracy)"
    )
    tiny = write(tmp_path / "t.csv", "".join(f"u {i},{'ab'[i % 2]}\n" for i in range(10)))
    assert convert("csv", str(tmp_path / "t"), input=[str(tiny)], quiet=True).warnings == [
        "dev: 1 utterance carved from 10 (fewer than 50): checkpoint choice, early stopping and calibration on "
        "so few are noisy (one utterance = 100.0 points of dev accuracy)"
    ]
    five = write(tmp_path / "f.csv", "".join(f"u {i},a\n" for i in range(4)))
    assert convert("csv", str(tmp_path / "f"), input=[str(five)], quiet=True).warnings == [
        "dev: 0 utterances carved from 4: fit needs a dev split (give one with --dev, a larger --split, or train "
        "without validation: --trainer.limit_val_batches 0)"
    ]
    assert convert("csv", str(tmp_path / "f"), input=[str(five)], split="1,0,0", quiet=True).warnings == []


# --- Rasa data given to fit / data check ------------------------------------------------------------------

RASA = """\
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hi
    - hello there
    - good morning
    - hey
- intent: pay
  examples: |
    - send [50](amount) to [Mary](person)
    - pay [Bob](person) [20](amount)
    - transfer [10](amount) to [Ann](person)
    - send money to [Joe](person)
"""


def test_rasa_inputs_are_recognised(tmp_path):
    nlu_file = write(tmp_path / "bot" / "data" / "nlu.yml", RASA)
    write(tmp_path / "bot" / "domain.yml", 'version: "3.1"\n')
    write(tmp_path / "bot" / "data" / "stories.yml", "stories: []\n")
    rasa_json = write(tmp_path / "nlu.json", '{"rasa_nlu_data": {"common_examples": []}}')
    write(tmp_path / "chatft" / "train.jsonl", '{"words": ["hi"], "intent": "a"}\n')
    assert rasa_input(nlu_file) == ("rasa-yaml", nlu_file)
    assert rasa_input(tmp_path / "bot") == ("rasa-yaml", tmp_path / "bot" / "data")
    assert rasa_input(tmp_path / "bot" / "data") == ("rasa-yaml", tmp_path / "bot" / "data")
    assert rasa_input(rasa_json) == ("rasa-json", rasa_json)
    assert rasa_input(tmp_path / "chatft") is None
    assert rasa_input(write(tmp_path / "q.csv", "hi,greet\n")) is None


def test_prepare_converts_once_per_content(tmp_path, capsys):
    path = write(tmp_path / "nlu.yml", RASA)
    first = prepare(str(path), tmp_path / "cache")
    out = capsys.readouterr().out.splitlines()
    assert (
        out[0]
        == f"data: {path} is Rasa data (rasa-yaml), converted into {first} (seed 0: same data, same splits)"
    )
    assert out[1] == f"train: 6 examples, 2 intents, 2 slot types -> {Path(first) / 'train.jsonl'}"
    assert prepare(str(path), tmp_path / "cache", announce=False) == first
    write(path, RASA + "    - pay [Sue](person)\n")
    assert prepare(str(path), tmp_path / "cache", announce=False) != first
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(
        [Path(first).name, Path(prepare(str(path), tmp_path / "cache", announce=False)).name]
    )
    assert prepare(str(tmp_path / "cache"), tmp_path / "x") == str(tmp_path / "cache")  # not Rasa: unchanged


def test_prepare_converts_again_when_only_the_synonyms_change(tmp_path):
    """The cache folder is named by the content it holds: entities.json included, not only the splits."""
    path = write(tmp_path / "nlu.yml", RASA + "- synonym: checking\n  examples: |\n    - current account\n")
    first = prepare(str(path), tmp_path / "cache", announce=False)
    assert json.loads((Path(first) / "entities.json").read_text(encoding="utf-8"))["synonyms"] == {
        "current account": "checking",
        "checking": "checking",
    }
    write(path, RASA + "- synonym: savings\n  examples: |\n    - current account\n")
    second = prepare(str(path), tmp_path / "cache", announce=False)
    assert second != first
    assert json.loads((Path(second) / "entities.json").read_text(encoding="utf-8"))["synonyms"] == {
        "current account": "savings",
        "savings": "savings",
    }


def test_other_files_name_the_convert_command(tmp_path):
    path = write(tmp_path / "q.csv", "hi,greet\n")
    with pytest.raises(ConfigError) as err:
        prepare(str(path), tmp_path / "cache")
    assert str(err.value) == (
        f"{path}: a file, not a data folder; convert it first: python -m chatft data convert --from csv "
        f"--input {path} --output {tmp_path / 'q'}"
    )
    with pytest.raises(DataFormatError) as err:
        detect_format(path)  # a datamodule built directly, without fit's ingest step: the same line
    assert str(err.value) == (
        f"{path}: a file, not a data folder; convert it first: python -m chatft data convert --from csv "
        f"--input {path} --output {tmp_path / 'q'}"
    )


def test_data_check_reads_rasa_data_as_fit_does(tmp_path):
    write(tmp_path / "data" / "nlu.yml", RASA)
    write(tmp_path / "q.csv", "hi,greet\n")
    write(tmp_path / "bad.yml", nlu("send [50(amount) to Mary"))
    done = chatft("data", "check", "data/nlu.yml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "ok: data/nlu.yml (rasa-yaml, converted as fit converts it): train 6, dev 1, test 1 examples; "
        "2 intents, 2 slot types in train\n"
    )
    assert done.stderr == (
        "warning: dev: 1 utterance carved from 8 (fewer than 50): checkpoint choice, early stopping and "
        "calibration on so few are noisy (one utterance = 100.0 points of dev accuracy)\n"
    )
    done = chatft("data", "check", "q.csv", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (
        2,
        "chatft: error: q.csv: a file, not a data folder; convert it first: python -m chatft data convert "
        "--from csv --input q.csv --output q\n",
    )
    done = chatft("data", "check", "bad.yml", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (
        2,
        "chatft: error: bad.yml:5: broken entity annotation in 'send [50(amount) to Mary': '[' before "
        f"'50(amount) to Mary' is never closed{HINT}\n",
    )


def test_fit_reads_a_rasa_file_directly(tiny_encoder, tmp_path, capsys, monkeypatch):
    from chatft.training.lightning_cli import lightning_cli

    monkeypatch.chdir(tmp_path)
    write(tmp_path / "data" / "nlu.yml", RASA)
    cli = lightning_cli(cli_args(tiny_encoder, "data/nlu.yml", trainer__accelerator="cpu"), run=False)
    converted = Path(cli.datamodule.data_dir)
    assert converted.parent == Path("runs/nlu/converted")
    assert cli.datamodule.intent_labels == ["<unk>", "greet", "pay"]
    assert cli.datamodule.slot_labels == ["<unk>", "O", "B-amount", "B-person"]
    out = capsys.readouterr().out.splitlines()
    assert out[:6] == [
        f"data: data/nlu.yml is Rasa data (rasa-yaml), converted into {converted} (seed 0: same data, same splits)",
        f"train: 6 examples, 2 intents, 2 slot types -> {converted / 'train.jsonl'}",
        f"dev: 1 examples, 1 intents, 0 slot types -> {converted / 'dev.jsonl'}",
        f"test: 1 examples, 1 intents, 0 slot types -> {converted / 'test.jsonl'}",
        "spans: 7 kept (0 snapped to word boundaries), 0 skipped",
        "warning: dev: 1 utterance carved from 8 (fewer than 50): checkpoint choice, early stopping and "
        "calibration on so few are noisy (one utterance = 100.0 points of dev accuracy)",
    ]


def test_confusion_picture_of_a_test_split_with_one_intent(tmp_path):
    """Found by ``test`` on a tiny Rasa file: one test utterance, predicted right, made torchmetrics refuse a
    one-class matrix (a traceback after the metrics were printed)."""
    import torch

    from chatft.training.reports import save_confusion_png

    confmat = torch.zeros(3, 3, dtype=torch.long)
    confmat[1, 1] = 1
    save_confusion_png(confmat, ["<unk>", "greet", "pay"], tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
