"""DDP on 2 CPU processes (gloo): training is sharded per rank, and validation/test metrics equal 1-process ones.

One subprocess runs ``tests/ddp_run.py`` with ``configs/ddp-cpu.yaml``: fit, then validate and test of the last
checkpoint, as 2 ranks of one process group. The same checkpoint is then evaluated in this process with 1 device.
The eval splits have 17 utterances: not divisible by 2, and sharded 8 + 9, so with eval batches of 4 the ranks
run 2 and 3 batches. Every metric must be identical (exact float equality) and count each utterance once.
The loss is the exception, by construction: ``val/loss`` is a mean of batch means weighted by utterances, the
slot part of each batch mean is a mean over that batch's words, and the batches differ between 1 and 2
processes; so the loss is not compared (on this data the two differ by about 7%).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, cli_args, demo_subset

N_TRAIN, N_EVAL, EPOCHS, BATCH, EVAL_BATCH = 160, 17, 8, 4, 4


def _options(encoder: str, data: Path, root: Path) -> list[str]:
    # A learning rate large enough that the tiny random BERT learns something in 8 short epochs, so the
    # compared metrics are neither 0 nor 1 (a model that predicts one intent would agree trivially).
    return cli_args(
        encoder,
        data,
        root,
        data__batch_size=BATCH,
        data__eval_batch_size=EVAL_BATCH,
        model__learning_rate="1e-2",
        model__head_learning_rate="1e-2",
        trainer__max_epochs=EPOCHS,
        # The fallback at a threshold this tiny model's confidences straddle, so it rejects some test
        # utterances and accepts others; at the default 0.7 it rejects every one (intent accuracy 0).
        oos__confidence_threshold="0.35",
    )


def clean_env() -> dict[str, str]:
    """This environment without SLURM's and torch.distributed's variables (CI may itself run under SLURM,
    and Lightning would then take the SLURM job's ranks for ours)."""
    drop = ("SLURM_", "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop) and k not in ("RANK",)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="module")
def ddp_run(tiny_encoder, tmp_path_factory) -> tuple[dict, Path, str]:
    """Run fit + validate + test as 2 DDP processes once for this module; returns (results, data, encoder)."""
    tmp = tmp_path_factory.mktemp("ddp")
    data = demo_subset(tmp / "data", n_train=N_TRAIN, n_eval=N_EVAL)
    out = tmp / "ddp.json"
    cmd = [
        sys.executable,
        str(REPO / "tests/ddp_run.py"),
        str(out),
        *_options(tiny_encoder, data, tmp / "ddp"),
        "--config",
        str(REPO / "configs/ddp-cpu.yaml"),
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads(out.read_text()), data, tiny_encoder


def _one_process(encoder: str, data: Path, root: Path, ckpt: str) -> tuple[dict, dict, Path]:
    from chatft.training.lightning_cli import lightning_cli

    args = [*_options(encoder, data, root), "--trainer.devices", "1", "--trainer.accelerator", "cpu"]
    cli = lightning_cli(args, run=False)
    (val,) = cli.trainer.validate(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt, verbose=False)
    (test,) = cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt, verbose=False)
    return val, test, Path(cli.trainer.log_dir)


def test_ddp_trains_on_distinct_shards_with_per_process_batch_size(ddp_run):
    result, _, _ = ddp_run
    assert result["world_size"] == 2
    # 160 utterances / batch 4 = 40 batches per epoch, dealt to 2 ranks: 20 optimizer steps per epoch, half
    # of a 1-process run's (data.batch_size is per process; the effective batch is 8).
    assert result["global_step"] == EPOCHS * math.ceil(N_TRAIN / BATCH / 2) == 160


def test_ddp_eval_metrics_equal_one_process_exactly(ddp_run, tmp_path):
    from chatft.core.tags import bio_chunks
    from chatft.training.samplers import EvalBatchSampler

    ddp, data, encoder = ddp_run
    # The case under test: the ranks' shards are unpadded and uneven (8 and 9 utterances: 2 and 3 batches).
    shards = [list(EvalBatchSampler([5] * N_EVAL, EVAL_BATCH, num_replicas=2, rank=r)) for r in (0, 1)]
    assert [len(s) for s in shards] == [2, 3]

    val, test, log_dir = _one_process(encoder, data, tmp_path / "one", ddp["last"])
    for one, two, split in ((val, ddp["val"], "val"), (test, ddp["test"], "test")):
        assert set(one) == set(two)
        loss = f"{split}/loss"
        assert math.isfinite(one[loss]) and math.isfinite(two[loss])  # not compared: see the module docstring
        # ECE sums confidences, which move in the last float32 bits when utterances are padded differently
        # (other batches per process): equal to 1e-6, not bit for bit. Everything counted is exact. Below 100
        # in-scope utterances no ECE is reported (NaN in both runs; ece_n, counted, is compared exactly).
        ece = {f"{split}/ece_uncalibrated", f"{split}/ece_calibrated"}
        assert {k: two[k] for k in ece & set(two)} == pytest.approx(
            {k: one[k] for k in ece & set(one)}, abs=1e-6, nan_ok=True
        )
        exact_one = {k: v for k, v in one.items() if k != loss and k not in ece}
        exact_two = {k: v for k, v in two.items() if k != loss and k not in ece}
        assert exact_two == exact_one
        # intent acc/P/R/F1, slot P/R/F1, sentence accuracy (+ in test: ECE before/after calibration, not
        # compared exactly, and its sample size ece_n, counted, so exact)
        assert len(exact_one) == (8 if split == "val" else 9) and len(one) == (9 if split == "val" else 12)
        if split == "test":
            assert one["test/ece_n"] == two["test/ece_n"] == N_EVAL
        # Not a model that predicts one thing: the comparison would then be trivially equal.
        assert 0 < one[f"{split}/intent_acc"] < 1 and 0 < one[f"{split}/slot_f1"] < 1

    # The per-class report (written by rank 0 from counts reduced over both ranks) is the same file,
    # and counts every test utterance once: no sample repeated to even out the shards, none dropped.
    report_two = json.loads((Path(ddp["test_log_dir"]) / "test_report.json").read_text())
    report_one = json.loads((log_dir / "test_report.json").read_text())
    # The calibration part holds mean confidences (last float32 bits, see above); its bin counts are exact.
    cal_two, cal_one = report_two.pop("calibration"), report_one.pop("calibration")
    for name in ("uncalibrated", "calibrated"):
        assert cal_two[f"bins_{name}"]["count"] == cal_one[f"bins_{name}"]["count"]
        assert cal_two[f"ece_{name}"] == pytest.approx(cal_one[f"ece_{name}"], abs=1e-6)
    for key in ("metrics",):
        ece = {k for k in report_one[key] if "ece" in k}
        assert {k: report_two[key].pop(k) for k in ece} == pytest.approx(
            {k: report_one[key].pop(k) for k in ece}, nan_ok=True
        )
    assert report_two == report_one
    assert sum(row["support"] for row in report_two["intents"]) == N_EVAL
    gold_spans = sum(
        len(bio_chunks(line.split())) for line in (data / "test/seq.out").read_text().splitlines()
    )
    assert sum(row["support"] for row in report_two["slots"]) == gold_spans


def test_eval_split_smaller_than_the_world_is_a_one_line_error(tiny_encoder, tmp_path):
    from types import SimpleNamespace

    from chatft.core.errors import ConfigError
    from chatft.training.datamodule import IntentSlotDataModule

    data = demo_subset(tmp_path / "data", n_train=8, n_eval=1)
    dm = IntentSlotDataModule(data_dir=str(data), tokenizer=tiny_encoder)
    dm.setup("validate")
    dm.trainer = SimpleNamespace(world_size=2, global_rank=1)  # rank 1 would get an empty shard
    with pytest.raises(ConfigError, match=r"^dev: 1 utterance\(s\) for 2 processes; each process needs"):
        dm.val_dataloader()
    dm.trainer = None  # one process
    assert [len(b) for b in dm.val_dataloader().batch_sampler] == [1]


@pytest.mark.slow  # 23.7 s on the shared 2-core VM (with a training job beside it): run with -m slow
def test_torchrun_starts_the_processes_and_fit_runs_as_one_group(tiny_encoder, tmp_path):
    """``torchrun --standalone --nproc_per_node 2 -m chatft fit ... --config configs/ddp-cpu.yaml`` (the guide's
    command, as ``python -m torch.distributed.run``): Lightning takes torchrun's two processes as its ranks
    (TorchElasticEnvironment) and starts none itself. One group of 2: half a 1-process run's steps, one run
    folder, rank 0 alone prints."""
    import torch

    data = demo_subset(tmp_path / "data", n_train=32, n_eval=17)
    root = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "chatft",
        "fit",
        *cli_args(tiny_encoder, data, root, data__batch_size=BATCH, trainer__max_epochs=1),
        "--config",
        str(REPO / "configs/ddp-cpu.yaml"),
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert proc.stdout.count("device: cpu x 2\n") == 1
    assert proc.stdout.count("run folder: ") == 1
    assert sorted(p.name for p in (root / "lightning_logs").iterdir()) == ["version_0"]
    last = torch.load(root / "lightning_logs/version_0/checkpoints/last.ckpt", weights_only=False)
    # 32 utterances / batch 4 = 8 batches, dealt to 2 ranks: 4 steps (one process would take 8).
    assert last["global_step"] == math.ceil(32 / BATCH / 2) == 4
