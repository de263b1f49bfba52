"""benchmarks/data_efficiency.py: fraction -> sample size -> the utterances written, the fit it asks for, the table.

Torch-free: the fit is replaced by a stand-in that records its arguments and writes a validation log.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location(
        "data_efficiency", REPO / "benchmarks" / "data_efficiency.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _source(root: Path, n: int = 10) -> Path:
    """A JointBERT-layout folder: train utterance i is ``w{i}`` tagged ``O`` with intent ``i{i}``."""
    for split, size in (("train", n), ("dev", 2), ("test", 3)):
        (root / split).mkdir(parents=True)
        (root / split / "seq.in").write_text("".join(f"w{i}\n" for i in range(size)))
        (root / split / "seq.out").write_text("O\n" * size)
        (root / split / "label").write_text("".join(f"i{i}\n" for i in range(size)))
    return root


def test_sample_sizes_of_atis_train(bench):
    assert [bench.sample_size(f, 4478) for f in bench.FRACTIONS] == [45, 224, 448, 1120, 4478]
    assert bench.sample_size(0.25, 10) == 2  # 2.5: Python rounds half to even
    with pytest.raises(SystemExit, match="--fraction 0.05 of 10 training utterances is none"):
        bench.sample_size(0.05, 10)
    with pytest.raises(SystemExit, match=r"--fraction must be in \(0, 1\], got 1.5"):
        bench.sample_size(1.5, 10)


def test_run_names(bench):
    assert [bench.run_name(f, 0) for f in bench.FRACTIONS] == [
        "atis-1pct-seed0",
        "atis-5pct-seed0",
        "atis-10pct-seed0",
        "atis-25pct-seed0",
        "atis-100pct-seed0",
    ]
    assert bench.run_name(0.025, 2) == "atis-2p5pct-seed2"


def _fake_run_seed(calls: list, epochs: int):
    def run_seed(seed, out, fit_args):
        calls.append((seed, out, fit_args))
        log_dir = out / "lightning_logs" / "version_0"
        (log_dir / "checkpoints").mkdir(parents=True)
        rows = [{"epoch": e, "step": 2 * e + 1, "val/sent_acc": 0.1 * e} for e in range(epochs)]
        rows.insert(1, {"epoch": 0, "step": 1, "lr": 0.001})  # a row without the monitored metric
        (log_dir / "val_metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        return {
            "seed": seed,
            "fit_seconds": 61.0,
            "best_epoch": epochs - 1,
            "checkpoint": str(log_dir / "checkpoints" / "best.ckpt"),
            "dev": {"intent_acc": 0.5, "slot_f1": 0.25, "sent_acc": 0.125},
            "test": {"intent_acc": 0.75, "slot_f1": 0.5, "sent_acc": 0.375},
        }

    return run_seed


def _args(tmp_path: Path, source: Path, fraction: float, seed: int, fallback: bool = False):
    return argparse.Namespace(
        fraction=fraction,
        seed=seed,
        source=source,
        config=Path("configs/atis.yaml"),
        samples=tmp_path / "samples",
        fallback=fallback,
        out=tmp_path / "out",
    )


def test_run_writes_the_seeded_sample_and_fits_it(bench, tmp_path, monkeypatch):
    source = _source(tmp_path / "src")
    calls: list = []
    monkeypatch.setattr(bench, "run_seed", _fake_run_seed(calls, epochs=4))
    row = bench.run(_args(tmp_path, source, 0.3, 0))

    sample = tmp_path / "samples" / "atis-30pct-seed0"
    assert (sample / "train" / "seq.in").read_text() == "w0\nw6\nw9\n"  # random.Random(0), file order
    assert (sample / "train" / "label").read_text() == "i0\ni6\ni9\n"
    assert (sample / "test" / "seq.in").read_text() == "w0\nw1\nw2\n"  # test and dev whole
    assert (sample / "dev" / "label").read_text() == "i0\ni1\n"
    assert calls == [
        (
            0,
            tmp_path / "out" / "atis-30pct-seed0",
            ["--config", "configs/atis.yaml", "--data.data_dir", str(sample), "--oos.fallback", "false"],
        )
    ]
    assert row["fraction"] == 0.3
    assert row["n_train"] == 3
    assert row["train_total"] == 10
    assert row["epochs_run"] == 4
    saved = json.loads((tmp_path / "out" / "rows" / "atis-30pct-seed0.json").read_text())
    assert saved == row


def test_seed_changes_the_sample_and_fraction_one_uses_the_source(bench, tmp_path, monkeypatch):
    source = _source(tmp_path / "src")
    calls: list = []
    monkeypatch.setattr(bench, "run_seed", _fake_run_seed(calls, epochs=2))
    bench.run(_args(tmp_path, source, 0.3, 1))
    assert (tmp_path / "samples" / "atis-30pct-seed1" / "train" / "seq.in").read_text() == "w1\nw2\nw4\n"

    bench.run(_args(tmp_path, source, 1.0, 0, fallback=True))
    assert calls[-1][2] == ["--config", "configs/atis.yaml", "--data.data_dir", str(source)]
    assert not (tmp_path / "samples" / "atis-100pct-seed0").exists()


def test_table_lists_runs_and_the_mean_of_seeds(bench):
    def row(fraction, n, seed, sent):
        return {
            "fraction": fraction,
            "n_train": n,
            "seed": seed,
            "epochs_run": 30,
            "best_epoch": 20,
            "fit_seconds": 90.0,
            "dev": {"intent_acc": 0.5, "slot_f1": 0.25, "sent_acc": sent},
            "test": {"intent_acc": 0.75, "slot_f1": 0.5, "sent_acc": sent},
        }

    md = bench.table([row(0.05, 224, 0, 0.5), row(0.01, 45, 1, 0.25), row(0.01, 45, 0, 0.75)])
    assert md.splitlines() == [
        "| train share | utterances | seed | epochs run | best epoch | fit time | dev intent_acc | dev slot_f1 "
        "| dev sent_acc | test intent_acc | test slot_f1 | test sent_acc |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        "| 1 % | 45 | 0 | 30 | 20 | 1.5 min | 0.5000 | 0.2500 | 0.7500 | 0.7500 | 0.5000 | 0.7500 |",
        "| 1 % | 45 | 1 | 30 | 20 | 1.5 min | 0.5000 | 0.2500 | 0.2500 | 0.7500 | 0.5000 | 0.2500 |",
        "| 1 % | 45 | mean ± std of 2 | | | 1.5 min | 0.5000 ± 0.0000 | 0.2500 ± 0.0000 | 0.5000 ± 0.3536 "
        "| 0.7500 ± 0.0000 | 0.5000 ± 0.0000 | 0.5000 ± 0.3536 |",
        "| 5 % | 224 | 0 | 30 | 20 | 1.5 min | 0.5000 | 0.2500 | 0.5000 | 0.7500 | 0.5000 | 0.5000 |",
    ]


def test_plan_skips_written_rows_and_fits_in_stops_before_the_limit(bench):
    assert bench.plan([0.01, 0.05], [0, 1], {"atis-5pct-seed0"}) == [(0.01, 0), (0.01, 1), (0.05, 1)]
    assert bench.fits_in(0.0, 0.0, 600.0)
    assert bench.fits_in(300.0, 300.0, 600.0)
    assert not bench.fits_in(300.5, 300.0, 600.0)
    assert bench.fits_in(5000.0, 300.0, 0.0)  # 0: no limit


def test_coverage_counts_what_the_sample_holds_of_test(bench):
    got = bench.coverage(
        ["a", "b", "a"],
        ["B-city O", "O", "B-date I-date"],
        ["a", "c", "b", "a"],
        ["B-city", "B-time O B-city", "B-date I-date", "O"],
    )
    assert got == {"intents": 2, "slot_types": 2, "test_intent_covered": 0.75, "test_mentions_covered": 0.75}


def test_coverage_table_draws_the_sample_run_writes(bench, tmp_path):
    source = _source(tmp_path / "src")  # train i{k}, seed 0 at 30 % keeps lines 0, 6, 9; test intents i0-i2
    (source / "train" / "seq.out").write_text("".join(f"B-t{i}\n" for i in range(10)))
    (source / "test" / "seq.out").write_text("B-t0\nB-t6\nB-t1\n")
    assert bench.coverage_table(source, [0.3, 1.0], [0, 1]).splitlines()[2:] == [
        "| 30 % | 3 | 0 | 3 | 3 | 33.3% | 66.7% |",
        "| 30 % | 3 | 1 | 3 | 3 | 66.7% | 33.3% |",
        "| 100 % | 10 | all | 10 | 10 | 100.0% | 100.0% |",
    ]
