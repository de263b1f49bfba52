"""One count behind every few-shot decision of ``fit`` (the encoder advice, the intent pooling, the intent
head's learning rate, the intent-name utterances, the contrastive stage): the training files' utterances per
intent, out-of-scope ones left out, at least 2 intents. A bot with many out-of-scope examples is as few-shot
as its intents are."""

from __future__ import annotations

from types import SimpleNamespace

from chatft.core.pairs import in_scope_shape, is_few_shot
from chatft.training.datamodule import IntentSlotDataModule

from .conftest import cli_args, write_jointbert


def rows(per_intent: int, intents: tuple[str, ...] = ("greet", "book_flight"), n_oos: int = 0) -> list:
    """``per_intent`` one-word utterances of each intent, then ``n_oos`` out-of-scope ones."""
    own = [(f"w{i}", "O", intent) for intent in intents for i in range(per_intent)]
    return own + [(f"x{i}", "O", "oos") for i in range(n_oos)]


def test_in_scope_shape_leaves_the_out_of_scope_label_out():
    assert in_scope_shape(["a", "a", "oos", "b"], "oos") == (3, 2)
    assert in_scope_shape([1, 1, 4, 2], 4) == (3, 2)
    assert in_scope_shape(["a", "oos"]) == (2, 2)  # no out-of-scope label: every label counts
    assert in_scope_shape([], "oos") == (0, 0)
    assert is_few_shot(32, 2) and not is_few_shot(33, 2)  # 16 per intent is the bound
    assert not is_few_shot(3, 1) and not is_few_shot(0, 0)  # one intent, or none: no intent task
    assert is_few_shot(16, 2, per_intent=8) and not is_few_shot(17, 2, per_intent=8)


def test_training_shape_counts_the_files_in_scope_utterances(tmp_path, tiny_encoder, capsys):
    train = rows(10, n_oos=40)  # 60 utterances, 3 labels: 20 per label, 10 per intent
    data = write_jointbert(tmp_path / "data", {"train": train, "dev": train[:3]})
    dm = IntentSlotDataModule(str(data), tokenizer=tiny_encoder, cache="off", label_name_utterances=None)
    assert dm.training_shape() is None  # before setup
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 62  # the 2 intent names, added because the set is few-shot ...
    assert dm.training_shape() == (20, 2)  # ... are not the team's examples: not counted
    assert "a few-shot training set, 10.0 utterances per intent" in capsys.readouterr().out
    cached = IntentSlotDataModule(
        str(data), tokenizer=tiny_encoder, cache="on", cache_dir=str(tmp_path / "c")
    )
    cached.setup("fit")
    assert type(cached.datasets["train"]).__name__ == "ArrowSplit" and cached.training_shape() == (20, 2)
    dev_only = write_jointbert(tmp_path / "dev-oos", {"train": rows(10), "dev": rows(0, n_oos=2)})
    dm = IntentSlotDataModule(str(dev_only), tokenizer=tiny_encoder, cache="off")
    dm.setup("fit")
    assert "oos" in dm.intent_labels and dm.training_shape() == (20, 2)  # a label with no training utterance


def test_the_contrastive_stage_needs_two_intents():
    from chatft.training.contrastive import ContrastiveStage

    trainer = SimpleNamespace(ckpt_path=None, fast_dev_run=False, limit_train_batches=1.0)
    module = SimpleNamespace(hparams={"pretrained": True, "distill_from": None})
    stage = ContrastiveStage(enabled=None)
    assert stage.skip_reason(trainer, module, 10.0, 1) == "1 intent, no pairs of different intents"
    assert stage.skip_reason(trainer, module, 10.0, 2) is None
    assert ContrastiveStage(enabled=True).skip_reason(trainer, module, 10.0, 1) is None  # asked for: runs


def test_every_few_shot_rule_of_fit_counts_the_same(tiny_encoder, tmp_path, monkeypatch, capsys):
    """20 utterances per label counting ``oos`` as an intent (the schedule's old count: not few-shot), 10 per
    intent without it: every rule sees (20, 2) and treats the set as few-shot."""
    from chatft.training import module, schedule
    from chatft.training.contrastive import ContrastiveStage
    from chatft.training.lightning_cli import lightning_cli

    seen = []

    def spy(rule):
        def asked(n_train, n_intents, encoder):
            seen.append((rule.__name__, n_train, n_intents))
            return rule(n_train, n_intents, encoder)

        return asked

    monkeypatch.setattr(module, "default_intent_pooling", spy(schedule.default_intent_pooling))
    monkeypatch.setattr(schedule, "few_shot_encoder_advice", spy(schedule.few_shot_encoder_advice))
    monkeypatch.setattr(
        module, "default_intent_head_learning_rate", spy(schedule.default_intent_head_learning_rate)
    )
    train = rows(10, n_oos=40)
    data = write_jointbert(tmp_path / "data", {"train": train, "dev": train[::7]})
    args = cli_args(
        tiny_encoder,
        data,
        tmp_path / "run",
        trainer__max_epochs=1,
        data__batch_size=16,
        data__label_name_utterances="null",
        contrastive__enabled="null",
        contrastive__iterations=1,
        contrastive__max_steps=1,
    )
    cli = lightning_cli(["fit", *args])
    stage = next(c for c in cli.trainer.callbacks if isinstance(c, ContrastiveStage))
    assert sorted(seen) == [
        ("default_intent_head_learning_rate", 20, 2),
        ("default_intent_pooling", 20, 2),
        ("few_shot_encoder_advice", 20, 2),
    ]
    assert len(stage.losses) == 1  # the stage ran: few-shot by its count too
    out = capsys.readouterr().out
    assert "train: 2 intent names added as utterances, 62 in all (a few-shot training set" in out
    assert "contrastive stage: 16 pairs of 62 utterances (1 steps of 16)" in out
