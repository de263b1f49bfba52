"""The contrastive pair stage (SetFit's recipe): pair generation, when it runs by default, what it does to the
encoder, and DialoGLUE's few-shot CLINC sampler (benchmarks/clinc_fewshot.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from chatft.core.pairs import label_name_words, mean_per_label, sentence_pairs

from .conftest import cli_args

REPO = Path(__file__).resolve().parents[1]
CLINC = REPO.parent / "shared" / "data" / "clinc150" / "data_full.json"


def _fewshot_module():
    spec = importlib.util.spec_from_file_location("clinc_fewshot", REPO / "benchmarks" / "clinc_fewshot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- pairs (torch-free) -------------------------------------------------------------------------------------


def test_sentence_pairs_one_positive_and_one_negative_per_utterance_and_round():
    # 'x' has two utterances; 'y' and 'z' one each: their positive partner is themselves (SetFit draws from
    # the whole class, the utterance included).
    pairs = sentence_pairs(["x", "x", "y", "z"], iterations=1, seed=0)
    assert pairs == [
        (2, 2, 1.0),
        (3, 0, 0.0),
        (0, 3, 0.0),
        (1, 1, 1.0),
        (0, 1, 1.0),
        (1, 2, 0.0),
        (3, 3, 1.0),
        (2, 0, 0.0),
    ]
    assert len(sentence_pairs(["x", "x", "y", "z"], iterations=2, seed=0)) == 16
    assert sentence_pairs(["x", "x", "y", "z"], iterations=1, seed=0) == pairs  # seeded, no global state


def test_a_single_label_gives_positives_only():
    assert sentence_pairs(["x", "x"], iterations=1, seed=3) == [(0, 1, 1.0), (1, 0, 1.0)]
    assert sentence_pairs([], iterations=5, seed=0) == []
    with pytest.raises(ValueError, match="iterations must be >= 0"):
        sentence_pairs(["x"], iterations=-1, seed=0)


def test_label_names_as_words():
    assert label_name_words("pto_request") == ["pto", "request"]
    assert label_name_words("bookFlight") == ["book", "flight"]
    assert label_name_words("atis_flight#atis_airfare") == ["atis", "flight", "atis", "airfare"]
    assert label_name_words("___") == []


def test_mean_per_label():
    assert mean_per_label(["x", "x", "y"]) == 1.5
    assert mean_per_label([]) == 0.0


# --- when the stage runs ------------------------------------------------------------------------------------


def _trainer(**overrides):
    return SimpleNamespace(
        **{"ckpt_path": None, "fast_dev_run": False, "limit_train_batches": 1.0, **overrides}
    )


def _module(**hparams):
    return SimpleNamespace(hparams={"pretrained": True, "distill_from": None, **hparams})


@pytest.mark.parametrize(
    ("options", "per_intent", "trainer", "hparams", "reason"),
    [
        ({}, 10.0, {}, {}, None),  # CLINC150 10-shot
        ({}, 5.0, {}, {}, None),  # 5-shot
        ({}, 16.0, {}, {}, None),  # the bound itself is few-shot
        (
            {},
            100.0,
            {},
            {},
            "100.0 utterances per intent, more than --contrastive.max_per_intent",
        ),  # CLINC150
        ({}, 213.2, {}, {}, "213.2 utterances per intent, more than --contrastive.max_per_intent"),  # ATIS
        (
            {"max_per_intent": 8},
            10.0,
            {},
            {},
            "10.0 utterances per intent, more than --contrastive.max_per_intent",
        ),
        ({}, 10.0, {"limit_train_batches": 5}, {}, "debug run"),
        ({}, 10.0, {"fast_dev_run": True}, {}, "debug run"),
        ({}, 10.0, {}, {"pretrained": False}, "randomly initialised encoder"),
        ({}, 10.0, {}, {"distill_from": "t.ckpt"}, "student of a distillation teacher"),
        ({}, 10.0, {"ckpt_path": "last.ckpt"}, {}, "resumed fit (the weights come from the checkpoint)"),
        ({"enabled": True}, 213.2, {"limit_train_batches": 5}, {"pretrained": False}, None),
        (
            {"enabled": True},
            10.0,
            {"ckpt_path": "last.ckpt"},
            {},
            "resumed fit (the weights come from the checkpoint)",
        ),
        ({"enabled": False}, 10.0, {}, {}, "--contrastive.enabled false"),
    ],
)
def test_on_by_default_for_few_shot_training_sets_only(options, per_intent, trainer, hparams, reason):
    from chatft.training.contrastive import ContrastiveStage

    stage = ContrastiveStage(**{"enabled": None, **options})  # None: the few-shot rule
    assert stage.skip_reason(_trainer(**trainer), _module(**hparams), per_intent) == reason


def test_off_by_default():
    # Measured no better than today's schedule on CLINC150 5-shot dev (docs/results.md, "Few-shot intents").
    from chatft.training.contrastive import ContrastiveStage

    assert ContrastiveStage().skip_reason(_trainer(), _module(), 5.0) == "--contrastive.enabled false"


def test_bad_options_are_one_line_config_errors():
    from chatft.core.errors import ConfigError
    from chatft.training.contrastive import ContrastiveStage

    with pytest.raises(
        ConfigError, match="--contrastive.iterations and --contrastive.batch_size must be >= 1"
    ):
        ContrastiveStage(iterations=0)
    with pytest.raises(ConfigError, match="--contrastive.learning_rate must be > 0"):
        ContrastiveStage(learning_rate=0)


# --- what the stage does ------------------------------------------------------------------------------------


def _run_stage(encoder_path: str):
    import torch
    from transformers import AutoModel, AutoTokenizer

    from chatft.core.features import tokenize_examples
    from chatft.training.contrastive import train_on_pairs

    tokenizer = AutoTokenizer.from_pretrained(encoder_path)
    encoder = AutoModel.from_pretrained(encoder_path, add_pooling_layer=False)
    words = [["book", "a", "table"], ["table", "for", "two"], ["play", "music"], ["play", "a", "song"]]
    features = tokenize_examples(tokenizer, words, 16, word_tag_ids=[None] * 4, intents=[1, 1, 2, 2])
    before = {n: p.detach().clone() for n, p in encoder.named_parameters()}
    pairs = sentence_pairs([f.intent for f in features], iterations=2, seed=0)
    torch.manual_seed(0)
    losses = train_on_pairs(encoder, features, pairs, tokenizer.pad_token_id, 4, 1e-3, 0.0)
    return before, encoder, losses


def test_stage_moves_the_encoder_and_is_deterministic(tiny_encoder):
    before, first, losses = _run_stage(tiny_encoder)
    _, second, losses_again = _run_stage(tiny_encoder)
    assert len(losses) == 4  # 16 pairs in steps of 4
    assert losses == losses_again
    assert [round(x, 4) for x in losses] == [0.4104, 0.2088, 0.3742, 0.5685]
    changed = [n for n, p in first.named_parameters() if not (p == before[n]).all()]
    assert "encoder.layer.0.attention.self.query.weight" in changed
    assert "embeddings.word_embeddings.weight" in changed
    for (name, p), q in zip(first.named_parameters(), second.parameters(), strict=True):
        assert (p == q).all(), name


def test_the_few_shot_rule_runs_the_stage_in_fit(tiny_encoder, demo_small, tmp_path, capsys):
    from chatft.training.contrastive import ContrastiveStage
    from chatft.training.lightning_cli import lightning_cli

    def fit(root: str, **options):
        args = cli_args(
            tiny_encoder,
            demo_small,
            tmp_path / root,
            trainer__max_epochs=1,
            data__batch_size=16,
            contrastive__enabled="null",  # the few-shot rule (the default is off)
            contrastive__iterations=1,
            contrastive__max_steps=3,
            **options,
        )
        cli = lightning_cli(["fit", *args])
        return next(c for c in cli.trainer.callbacks if isinstance(c, ContrastiveStage))

    # The 64-utterance demo slice has 9 intents: 7.1 an intent, few-shot.
    stage = fit("on")
    assert len(stage.losses) == 3
    assert "contrastive stage: 48 pairs of 64 utterances (3 steps of 16)" in capsys.readouterr().out
    stage = fit("names", contrastive__label_names=True)
    assert (
        "contrastive stage: 48 pairs of 64 utterances and 9 intent names (3 steps of 16)"
        in capsys.readouterr().out
    )
    stage = fit("off", contrastive__max_per_intent=7)
    assert stage.losses == []
    assert "contrastive stage" not in capsys.readouterr().out


# --- DialoGLUE's few-shot sampler ---------------------------------------------------------------------------


def test_dialoglue_sampler_draws_k_per_intent_in_sorted_order():
    sample_indices = _fewshot_module().sample_indices
    intents = ["b", "a", "b", "c", "a", "b", "c", "a", "b", "c", "a", "c"]
    # np.random.seed(0); a: choice([1, 4, 7, 10], 2), b: choice([0, 2, 5, 8], 2), c: choice([3, 6, 9, 11], 2)
    assert sample_indices(intents, 2, seed=0) == [7, 10, 0, 5, 11, 3]
    assert sample_indices(intents, 3, seed=0) == [7, 10, 4, 0, 5, 2, 11, 3, 9]
    with pytest.raises(ValueError, match="intent 'a' has 4 training utterances, fewer than k=5"):
        sample_indices(intents, 5, seed=0)


def test_few_shot_json_keeps_dev_and_test_whole_and_drops_out_of_scope():
    few_shot_json = _fewshot_module().few_shot_json
    full = {
        "train": [["t0", "b"], ["t1", "a"], ["t2", "b"], ["t3", "a"]],
        "val": [["v0", "a"]],
        "test": [["s0", "b"]],
        "oos_train": [["o0", "oos"]],
        "oos_val": [["o1", "oos"]],
        "oos_test": [["o2", "oos"]],
    }
    assert few_shot_json(full, 1, seed=0) == {
        "train": [["t3", "a"], ["t0", "b"]],
        "val": [["v0", "a"]],
        "test": [["s0", "b"]],
        "oos_train": [],
        "oos_val": [],
        "oos_test": [],
    }


@pytest.mark.skipif(not CLINC.is_file(), reason="needs ../shared/data/clinc150/data_full.json")
def test_clinc150_ten_shot_has_ten_utterances_of_each_intent():
    module = _fewshot_module()
    subset = module.few_shot_json(json.loads(CLINC.read_text(encoding="utf-8")), 10, seed=0)
    intents = [intent for _, intent in subset["train"]]
    assert len(intents) == 1500 and len(set(intents)) == 150
    assert all(intents.count(x) == 10 for x in set(intents))
    assert len(subset["val"]) == 3000 and len(subset["test"]) == 4500
