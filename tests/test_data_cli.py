"""python -m chatft data convert|stats|check as users run them: real processes, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from chatft.cli import main
from chatft.core.formats import DataFormatError, detect_format

from .conftest import REPO

NLU = """\
nlu:
- intent: greet
  examples: |
    - hi
    - hello there
- intent: book
  examples: |
    - book a table in [Paris](city)
    - table for two in [Rome](city)
"""


def chatft(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "chatft", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


def test_convert_then_check_and_stats(tmp_path):
    (tmp_path / "nlu.yml").write_text(NLU, encoding="utf-8")
    out = tmp_path / "data"
    done = chatft(
        "data",
        "convert",
        "--from",
        "rasa-yaml",
        "--train",
        "nlu.yml",
        "--split",
        "1,0,0",
        "--output",
        str(out),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.splitlines()[0] == f"train: 4 examples, 2 intents, 1 slot types -> {out / 'train.jsonl'}"
    )
    assert [json.loads(line)["tags"] for line in (out / "train.jsonl").read_text().splitlines()] == [
        ["O"],
        ["O", "O"],
        ["O", "O", "O", "O", "B-city"],
        ["O", "O", "O", "O", "B-city"],
    ]
    checked = chatft("data", "check", str(out))
    assert checked.returncode == 0
    assert checked.stdout == f"ok: {out} (jsonl): train 4 examples; 2 intents, 1 slot types in train\n"
    assert checked.stderr.splitlines() == [
        "warning: dev: not found (fit validates on it)",
        "warning: test: no test split (it is optional: only `test` reads it)",
    ]
    stats = chatft("data", "stats", str(out), "--json")
    assert stats.returncode == 0
    assert json.loads(stats.stdout)["splits"]["train"]["intents"] == {"greet": 2, "book": 2}


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--from", "rasa-yaml", "--input", "bad.yml"], "chatft: error: bad.yml:4: malformed YAML"),
        (["--from", "luis", "--input", "bad.yml"], "chatft: error: --from 'luis': unknown format"),
        (
            ["--from", "spans-jsonl", "--input", "spans.jsonl"],
            "chatft: error: spans.jsonl:1: span 0-99 (x) is outside",
        ),
        (["--from", "csv", "--input", "a.csv", "--bogus"], "chatft: error: unrecognized option --bogus"),
    ],
)
def test_convert_errors_are_one_line_exit_2(tmp_path, args, error):
    (tmp_path / "bad.yml").write_text("nlu:\n- intent: a\n  examples: [\n", encoding="utf-8")
    (tmp_path / "spans.jsonl").write_text(
        '{"text": "hi", "label": [[0, 99, "x"]], "cats": ["a"]}\n', encoding="utf-8"
    )
    done = chatft("data", "convert", *args, "--output", "out", cwd=tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith(error), done.stderr


def test_check_bad_data_exit_2(tmp_path):
    (tmp_path / "train.jsonl").write_text(
        '{"words": ["hi"], "tags": ["O", "O"], "intent": "a"}\n', encoding="utf-8"
    )
    done = chatft("data", "check", str(tmp_path))
    assert done.returncode == 2
    assert (
        done.stderr
        == f"chatft: error: {tmp_path / 'train.jsonl'}:1: 1 words but 2 tags (give exactly one BIO tag per word)\n"
    )


def test_a_missing_folder_or_a_file_names_the_commands_own_option(tmp_path, capsys):
    """Each data command's error names how its user gave the folder (fit's --data.data_dir is fit's own)."""
    missing, plain = tmp_path / "nope", tmp_path / "utterances"
    plain.write_text("hi\n", encoding="utf-8")
    convert = (
        f"{plain}: a file, not a data folder; convert it first: python -m chatft data convert --from FORMAT "
        f"--input {plain} --output {tmp_path / 'utterances-data'} (FORMAT: brackets, spans-jsonl, csv or clinc; "
        "see data convert --help)"
    )
    for command, option in [
        (["data", "stats"], "the data_dir argument"),
        (["data", "check"], "the data_dir argument"),
        (["data", "augment", "--out", str(tmp_path / "out"), "--input"], "--input"),
    ]:
        for folder, error in [
            (missing, f"{missing}: data directory not found (set {option} to a folder with the data)"),
            (plain, convert),
        ]:
            with pytest.raises(SystemExit) as stop:
                main([*command, str(folder)])
            assert stop.value.code == 2
            assert capsys.readouterr().err == f"chatft: error: {error}\n"
    with pytest.raises(DataFormatError) as err:
        detect_format(missing)
    assert (
        str(err.value)
        == f"{missing}: data directory not found (set --data.data_dir to a folder with the data)"
    )


def test_data_commands_do_not_import_torch(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"words": ["hi"], "intent": "a"}\n', encoding="utf-8")
    code = (
        "import sys; from chatft.cli import main\n"
        f"main(['data', 'check', {str(tmp_path)!r}])\n"
        "print(sorted(m for m in ('torch', 'lightning', 'transformers') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.stdout.splitlines()[-1] == "[]"


def test_dashed_options_and_the_lenient_flag_work_as_messages_write_them(tmp_path):
    """The messages say ``--label-column NAME`` and ``data convert --lenient``: both must parse as written."""
    (tmp_path / "q.csv").write_text("Frage,Absicht\nhi,greet\nhello,greet\nbye,leave\nsee you,leave\n")
    done = chatft(
        "data", "convert", "--from", "csv", "--input", "q.csv", "--output", "o", "--split", "1,0,0",
        "--label-column", "Absicht", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["intent"] for line in (tmp_path / "o/train.jsonl").read_text().splitlines()] == [
        "greet",
        "greet",
        "leave",
        "leave",
    ]
    (tmp_path / "nlu.yml").write_text(NLU.replace("[Rome](city)", "[Rome(city)"), encoding="utf-8")
    strict = chatft(
        "data", "convert", "--from", "rasa-yaml", "--input", "nlu.yml", "--output", "s", cwd=tmp_path
    )
    assert strict.returncode == 2
    assert strict.stderr.strip().endswith("(data convert --lenient keeps it as words)")
    lenient = chatft(
        "data", "convert", "--from", "rasa-yaml", "--input", "nlu.yml", "--output", "l", "--split", "1,0,0",
        "--lenient", cwd=tmp_path,
    )  # fmt: skip
    assert lenient.returncode == 0, lenient.stderr
    rows = [json.loads(line) for line in (tmp_path / "l/train.jsonl").read_text().splitlines()]
    # Kept as literal words, split as split_words splits any text (brackets are words of their own).
    assert rows[3]["words"] == ["table", "for", "two", "in", "[", "Rome(city", ")"]
    assert rows[3]["tags"] == ["O"] * 7
