"""benchmarks/ablation_table.py: seeds.py folders -> one Markdown row per variant, several folders merged."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def table():
    spec = importlib.util.spec_from_file_location("ablation_table", REPO / "benchmarks" / "ablation_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _result(seed: int, dev_sent: float, test_sent: float, minutes: float) -> dict:
    return {
        "seed": seed,
        "fit_seconds": 60 * minutes,
        "best_epoch": 5 + seed,
        "dev": {"intent_acc": 0.98, "slot_f1": 0.975, "sent_acc": dev_sent},
        "test": {"intent_acc": 0.975, "slot_f1": 0.955, "sent_acc": test_sent},
    }


def _folder(root: Path, name: str, results: list[dict]) -> str:
    (root / name).mkdir()
    (root / name / "results.json").write_text(json.dumps(results))
    return str(root / name)


def test_one_row_merges_folders_in_seed_order_with_test_columns(table, tmp_path, capsys):
    later = _folder(tmp_path, "s12", [_result(2, 0.904, 0.874, 10.0), _result(1, 0.910, 0.878, 10.0)])
    first = _folder(tmp_path, "s0", [_result(0, 0.906, 0.870, 13.0)])
    text = table.main(["--test", f"teacher=x={later},{first}"])
    assert text == (
        "| variant | seeds | dev intent acc | dev slot F1 | dev sent acc | test intent acc | test slot F1 | "
        "test sent acc | dev sent acc per seed | kept epoch | fit time |\n"
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |\n"
        "| teacher=x | 0,1,2 | 98.00 ± 0.00 | 97.50 ± 0.00 | 90.67 ± 0.31 | 97.50 ± 0.00 | 95.50 ± 0.00 | "
        "87.40 ± 0.40 | 90.6 / 91.0 / 90.4 | 5,6,7 | 11.0 min |\n"
    )
    assert capsys.readouterr().out == text


def test_dev_only_columns_and_one_seed_without_spread(table, tmp_path):
    folder = _folder(tmp_path, "one", [_result(0, 0.91, 0.87, 6.5)])
    assert table.main([f"recipe={folder}"]).splitlines()[2] == (
        "| recipe | 0 | 98.00 | 97.50 | 91.00 | 91.0 | 5 | 6.5 min |"
    )


def test_intent_only_results_have_no_slot_f1(table, tmp_path):
    results = [_result(0, 0.95, 0.9372, 10.0), _result(1, 0.9557, 0.9404, 9.4)]
    for r in results:
        del r["dev"]["slot_f1"], r["test"]["slot_f1"]
    folder = _folder(tmp_path, "clinc", results)
    assert table.main(["--test", f"names={folder}"]).splitlines()[2] == (
        "| names | 0,1 | 98.00 ± 0.00 | n/a | 95.28 ± 0.40 | 97.50 ± 0.00 | n/a | 93.88 ± 0.23 | 95.0 / 95.6 | "
        "5,6 | 9.7 min |"
    )


def test_a_seed_in_two_folders_and_test_of_a_dev_only_run_are_errors(table, tmp_path):
    a = _folder(tmp_path, "a", [_result(0, 0.91, 0.87, 6.5)])
    b = _folder(tmp_path, "b", [_result(0, 0.90, 0.86, 6.5)])
    with pytest.raises(SystemExit, match="b/results.json: seed 0 is also in another folder"):
        table.main([f"twice={a},{b}"])
    dev_only = {k: v for k, v in _result(1, 0.9, 0.8, 1.0).items() if k != "test"}
    c = _folder(tmp_path, "c", [dev_only])
    with pytest.raises(SystemExit, match="dev only: a seed has no test metrics"):
        table.main(["--test", f"dev only={c}"])


def test_a_missing_folder_and_a_missing_label_are_one_line_errors(table, tmp_path):
    with pytest.raises(SystemExit) as err:
        table.main([f"x={tmp_path / 'nope'}"])
    assert (
        str(err.value)
        == f"{tmp_path / 'nope' / 'results.json'}: not found (FOLDER is a benchmarks/seeds.py --out folder)"
    )
    folder = _folder(tmp_path, "one", [_result(0, 0.91, 0.87, 6.5)])
    with pytest.raises(SystemExit) as err:
        table.main([folder])
    assert (
        str(err.value) == f"{folder!r}: expected LABEL=FOLDER[,FOLDER...] (the row's label, then its folders)"
    )
