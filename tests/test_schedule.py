"""Small data: at least schedule.min_steps optimizer steps, early stopping only on stretched runs."""

from __future__ import annotations

import json
from pathlib import Path

from chatft.training.lightning_cli import lightning_cli
from chatft.training.schedule import (
    budgeted_epochs,
    default_intent_pooling,
    default_patience,
    stretched_epochs,
)

from .conftest import cli_args


def test_stretching_rule_leaves_recipe_sized_data_alone():
    assert stretched_epochs(12, 4, 300) == 75  # 100 utterances, batch 32, configs/atis.yaml
    assert stretched_epochs(12, 3, 300) == 100  # 75 utterances
    assert stretched_epochs(12, 140, 300) == 12  # ATIS: 4478 utterances
    assert stretched_epochs(8, 38, 300) == 8  # the demo data: 1200 utterances, configs/demo.yaml
    assert [default_patience(e) for e in (12, 75, 100)] == [10, 19, 25]


def _epochs_run(root) -> list[int]:
    rows = (root / "lightning_logs/version_0/val_metrics.jsonl").read_text().splitlines()
    return [json.loads(r)["epoch"] for r in rows]


def test_small_data_trains_at_least_min_steps(tiny_encoder, demo_small, tmp_path, caplog):
    # 64 utterances in batches of 16: 4 steps an epoch; demo.yaml's 8 epochs would be 32 steps.
    root = tmp_path / "run"
    cli = lightning_cli(
        [
            "fit",
            *cli_args(
                tiny_encoder,
                demo_small,
                root,
                data__batch_size=16,
                schedule__min_steps=40,
            ),
        ]
    )
    assert cli.trainer.max_epochs == 10 and cli.trainer.global_step == 40
    assert _epochs_run(root) == list(range(10))
    assert cli.trainer.log_every_n_steps == 4  # min(demo.yaml's 10, batches per epoch)
    assert (
        "small training set: 4 steps per epoch, so 8 epochs would be 32 steps; training up to 10 epochs "
        "(40 steps, --schedule.min_steps 40), stopping early once val/sent_acc has not improved for 10 epochs; "
        "--trainer.max_epochs N trains exactly N"
    ) in caplog.messages


def test_explicit_max_epochs_wins(tiny_encoder, demo_small, tmp_path):
    root = tmp_path / "run"
    cli = lightning_cli(
        ["fit", *cli_args(tiny_encoder, demo_small, root, data__batch_size=16, trainer__max_epochs=2)]
    )
    assert cli.trainer.max_epochs == 2 and cli.trainer.global_step == 8


def test_stretched_run_stops_early_when_dev_stops_improving(tiny_encoder, demo_small, tmp_path, caplog):
    # Learning rates 0: dev metrics never change, so patience 2 stops after epochs 0, 1, 2.
    root = tmp_path / "run"
    # demo_small's dev has 23 utterances; the default (min_dev_utterances 0) chooses on them.
    args = dict(data__batch_size=16, schedule__min_steps=400, schedule__patience=2)
    args.update(model__learning_rate=0.0, model__head_learning_rate=0.0)
    cli = lightning_cli(["fit", *cli_args(tiny_encoder, demo_small, root, **args)])
    assert cli.trainer.max_epochs == 100
    assert _epochs_run(root) == [0, 1, 2] and cli.trainer.global_step == 12
    first = json.loads((root / "lightning_logs/version_0/val_metrics.jsonl").read_text().splitlines()[0])
    assert (
        "early stopping: stopped after epoch 2 of up to 100 (step 12): val/sent_acc had not improved for 2 "
        f"validations (--schedule.patience 2); best {first['val/sent_acc']:.4f}, first reached at epoch 0"
    ) in caplog.messages
    assert (
        "small dev split: 23 utterances, fewer than 50: early stopping and the kept checkpoint are chosen on "
        "them (one utterance = 4.3 points of dev accuracy); --schedule.min_dev_utterances 50 trains every "
        "epoch and keeps the last one instead"
    ) in caplog.messages


def test_step_budget_trims_large_data_to_whole_epochs():
    assert budgeted_epochs(12, 472, 2000) == 5  # CLINC150: 15,100 utterances, batch 32, configs/atis.yaml
    assert budgeted_epochs(12, 409, 2000) == 5  # a slot set 3x ATIS (13,084 utterances)
    assert budgeted_epochs(12, 140, 2000) == 12  # ATIS: 1,680 steps, under the budget
    assert budgeted_epochs(12, 3000, 2000) == 1
    assert budgeted_epochs(12, 472, 0) == 12  # off


def test_large_data_trains_the_step_budget_in_whole_epochs(tiny_encoder, demo_small, tmp_path, caplog):
    # 64 utterances in batches of 16: 4 steps an epoch; demo.yaml's 8 epochs would be 32; a budget of 10 -> 3 epochs.
    root = tmp_path / "run"
    args = dict(data__batch_size=16, schedule__min_steps=0, schedule__budget_steps=10)
    cli = lightning_cli(["fit", *cli_args(tiny_encoder, demo_small, root, **args)])
    assert cli.trainer.max_epochs == 3 and cli.trainer.global_step == 12
    assert _epochs_run(root) == [0, 1, 2]  # every epoch validated, the last one too
    assert (
        "large training set: 4 steps per epoch, so 8 epochs would be 32 steps; training 3 epochs "
        "(12 steps, --schedule.budget_steps 10); --trainer.max_epochs N trains exactly N"
    ) in caplog.messages


def test_step_budget_below_min_steps_is_a_config_error():
    import pytest

    from chatft.core.errors import ConfigError
    from chatft.training.schedule import SmallDataSchedule

    with pytest.raises(
        ConfigError,
        match=r"schedule.budget_steps must be 0 \(off\) or >= schedule.min_steps \(300\), got 100",
    ):
        SmallDataSchedule(budget_steps=100)


def test_too_small_a_dev_split_trains_every_epoch_and_keeps_the_last(
    tiny_encoder, demo_small, tmp_path, caplog
):
    # Same run as above with --schedule.min_dev_utterances 50 (opt-in): 23 dev utterances choose nothing.
    root = tmp_path / "run"
    args = dict(
        data__batch_size=16, schedule__min_steps=40, schedule__patience=2, schedule__min_dev_utterances=50
    )
    args.update(model__learning_rate=0.0, model__head_learning_rate=0.0)
    cli = lightning_cli(["fit", *cli_args(tiny_encoder, demo_small, root, **args)])
    assert _epochs_run(root) == list(range(10)) and cli.trainer.global_step == 40
    assert Path(cli.trainer.checkpoint_callback.best_model_path).name == "best-epoch09-step40.ckpt"
    assert (
        "small dev split: 23 utterances, fewer than 50, too few to choose an epoch with; training every epoch "
        "without early stopping and keeping the last one (--schedule.min_dev_utterances 0 chooses on dev anyway)"
    ) in caplog.messages
    assert (
        "small training set: 4 steps per epoch, so 8 epochs would be 32 steps; training up to 10 epochs "
        "(40 steps, --schedule.min_steps 40); --trainer.max_epochs N trains exactly N"
    ) in caplog.messages


def test_few_shot_sets_with_the_default_encoder_are_pointed_at_mpnet():
    from chatft.core.encoder_names import DEFAULT_ENCODER
    from chatft.training.schedule import few_shot_encoder_advice

    assert few_shot_encoder_advice(1500, 150, DEFAULT_ENCODER) == (
        "few-shot training set (10.0 utterances per intent): the larger all-mpnet-base-v2 reached 0.957 dev intent "
        "accuracy (3 seeds) where the default encoder reached 0.928 on 10-shot CLINC150 (docs: Results, Few-shot "
        "intents): python -m chatft encoders install all-mpnet-base-v2 (once), then --model.encoder all-mpnet-base-v2"
    )
    assert few_shot_encoder_advice(16 * 7, 7, "all-MiniLM-L6-v2") is not None  # the default's short name
    assert few_shot_encoder_advice(16 * 7 + 1, 7, DEFAULT_ENCODER) is None  # above 16 per intent
    assert few_shot_encoder_advice(1500, 150, "all-mpnet-base-v2") is None  # already the larger one
    assert few_shot_encoder_advice(10, 150, "/models/my-bert") is None  # an encoder the user chose
    assert few_shot_encoder_advice(10, 1, DEFAULT_ENCODER) is None  # one intent: no intent task to help


def test_a_few_shot_fit_with_another_encoder_gets_no_advice(tiny_encoder, demo_small, tmp_path, caplog):
    # demo_small has 64 training utterances over the demo's intents (a few per intent): few-shot-sized.
    lightning_cli(["fit", *cli_args(tiny_encoder, demo_small, tmp_path / "run", trainer__max_epochs=1)])
    assert not [m for m in caplog.messages if m.startswith("few-shot training set")]


def test_setup_reads_the_training_set_and_the_models_encoder_for_the_advice(caplog):
    from types import SimpleNamespace

    from chatft.training.schedule import SmallDataSchedule

    dm = SimpleNamespace(datasets={"train": [None] * 30}, intent_labels=["<unk>", "a", "b", "c"])
    trainer = SimpleNamespace(datamodule=dm, is_global_zero=True)
    module = SimpleNamespace(hparams={"encoder": "sentence-transformers/all-MiniLM-L6-v2"})
    with caplog.at_level("WARNING", logger="chatft.training.schedule"):
        SmallDataSchedule._advise_encoder(trainer, module)
    assert [m[:52] for m in caplog.messages] == ["few-shot training set (10.0 utterances per intent): "]


def test_few_shot_sets_with_the_default_encoder_pool_the_intent_from_the_mean_of_the_tokens():
    from chatft.core.encoder_names import DEFAULT_ENCODER

    assert default_intent_pooling(1500, 150, DEFAULT_ENCODER) == "mean"  # 10-shot CLINC150
    assert default_intent_pooling(16 * 7, 7, "all-MiniLM-L6-v2") == "mean"  # inclusive bound; the short name
    assert default_intent_pooling(16 * 7 + 1, 7, DEFAULT_ENCODER) == "cls"
    assert default_intent_pooling(4478, 21, DEFAULT_ENCODER) == "cls"  # ATIS
    assert default_intent_pooling(10, 1, DEFAULT_ENCODER) == "cls"  # one intent: no intent task
    assert default_intent_pooling(1500, 150, "all-mpnet-base-v2") == "cls"  # measured no better with mpnet
    assert default_intent_pooling(1500, 150, "/models/my-bert") == "cls"  # not measured: as before


def test_the_intent_head_trains_three_times_faster_on_few_shot_sets():
    from chatft.training.schedule import default_intent_head_learning_rate as rate

    assert rate(1500, 150, 1e-3) == 3e-3  # 10-shot CLINC150, any encoder
    assert rate(16 * 7, 7, 1e-3) == 3e-3  # the inclusive bound of the few-shot rule
    assert rate(16 * 7 + 1, 7, 1e-3) == 1e-3
    assert rate(4478, 21, 1e-3) == 1e-3  # ATIS: the heads' rate
    assert rate(10, 1, 1e-3) == 1e-3  # one intent: no intent task
    assert rate(1500, 150, 0.0) == 0.0  # frozen heads stay frozen
    assert rate(1500, 150, 2e-3) == 6e-3  # a factor: the intent head follows the heads' rate
