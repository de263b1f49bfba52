"""chatft.training.metrics must give exactly seqeval's numbers (default, conlleval mode) -- the numbers papers report."""

from __future__ import annotations

import random
import warnings
from pathlib import Path

import pytest
import torch

seqeval_metrics = pytest.importorskip("seqeval.metrics")
from seqeval.metrics.sequence_labeling import get_entities  # noqa: E402

from chatft.core.tags import entity_types  # noqa: E402
from chatft.training.metrics import (  # noqa: E402
    OTHER_TYPE,
    SentenceAccuracy,
    SpanF1,
    report_from_confusion,
)

from .test_tags import WEIRD_TAGS  # noqa: E402

ATIS_DIR = Path(__file__).parents[1].parent / "shared/data/atis"
TOL = 1e-9


# ---------------------------------------------------------------- seqeval reference helpers
def _quiet(fn, *args, **kwargs):
    """seqeval warns on zero division and on non-NE tags such as '<unk>'; the values are what we compare."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def seqeval_spans(tags):
    """seqeval spans of one flat sentence with the end made exclusive."""
    return [(t, s, e + 1) for t, s, e in _quiet(get_entities, list(tags))]


def seqeval_prf(gold, pred):
    return (
        _quiet(seqeval_metrics.precision_score, gold, pred),
        _quiet(seqeval_metrics.recall_score, gold, pred),
        _quiet(seqeval_metrics.f1_score, gold, pred),
    )


def seqeval_report(gold, pred):
    rep = _quiet(seqeval_metrics.classification_report, gold, pred, output_dict=True)
    return {k: v for k, v in rep.items() if not k.endswith(" avg")}


def run_span_f1(metric, gold, pred, batch_sizes=(1,)):
    """Feed sentences in batches whose sizes cycle through ``batch_sizes``."""
    i, j = 0, 0
    while i < len(gold):
        b = batch_sizes[j % len(batch_sizes)]
        metric.update(pred[i : i + b], gold[i : i + b])
        i, j = i + b, j + 1
    return {k: float(v) for k, v in metric.compute().items()}


def assert_matches_seqeval(metric, gold, pred, batch_sizes=(1,)):
    got = run_span_f1(metric, gold, pred, batch_sizes)
    p, r, f = seqeval_prf(gold, pred)
    assert abs(got["precision"] - p) < TOL
    assert abs(got["recall"] - r) < TOL
    assert abs(got["f1"] - f) < TOL
    report = seqeval_report(gold, pred)
    rows = {row["type"]: row for row in metric.per_type()}
    known = [t for t in report if t in metric.entity_types]
    assert sorted(t for t in rows if t != OTHER_TYPE) == sorted(known)
    for t in known:
        exp, row = report[t], rows[t]
        assert abs(row["precision"] - exp["precision"]) < TOL, t
        assert abs(row["recall"] - exp["recall"]) < TOL, t
        assert abs(row["f1"] - exp["f1-score"]) < TOL, t
        assert row["support"] == exp["support"], t
    unknown_support = sum(v["support"] for t, v in report.items() if t not in metric.entity_types)
    assert rows.get(OTHER_TYPE, {"support": 0})["support"] == unknown_support
    return got


# ---------------------------------------------------------------- SpanF1 vs seqeval on random data
TYPES = ["a", "b", "c", "fromloc.city_name"]
UNSEEN = ["zz"]  # present in data, absent from the metric's entity_types


def random_corpus(seed, n_sent=300, malformed=True):
    """Gold in clean BIO (plus an unseen type); predictions = perturbed gold, possibly malformed."""
    rng = random.Random(seed)
    all_types = TYPES + UNSEEN
    gold, pred = [], []
    for _ in range(n_sent):
        n = rng.randint(0, 12)
        g, prev = [], None
        for _ in range(n):
            r = rng.random()
            if r < 0.45:
                g.append("O")
                prev = None
            elif r < 0.7 and prev is not None:
                g.append(f"I-{prev}")
            else:
                prev = rng.choice(all_types)
                g.append(f"B-{prev}")
        p = []
        for tag in g:
            r = rng.random()
            if r < 0.7:
                p.append(tag)
            elif r < 0.8:
                p.append("O")
            elif r < 0.9:
                p.append(f"{rng.choice('BI')}-{rng.choice(all_types)}")
            elif malformed:
                p.append(rng.choice(["<unk>", "I-a", "E-b", "S-c", "B", "I"]))
            else:
                p.append(tag)
        gold.append(g)
        pred.append(p)
    return gold, pred


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_span_f1_equals_seqeval_random(seed):
    gold, pred = random_corpus(seed, malformed=seed != 3)
    assert_matches_seqeval(SpanF1(TYPES), gold, pred, batch_sizes=(1, 7, 32, 3, 64))


def test_span_f1_per_type_covers_every_seqeval_type_when_all_known():
    gold, pred = random_corpus(10)
    metric = SpanF1(TYPES + UNSEEN + ["unk>", "_"])  # every type seqeval will see
    assert_matches_seqeval(metric, gold, pred, batch_sizes=(16,))
    assert OTHER_TYPE not in {row["type"] for row in metric.per_type()}
    assert set(seqeval_report(gold, pred)) == {row["type"] for row in metric.per_type()}


def test_span_f1_pred_only_and_gold_only_types():
    gold = [["B-a", "I-a", "O"], ["O", "O"]]
    pred = [["O", "O", "O"], ["B-b", "O"]]
    got = assert_matches_seqeval(SpanF1(["a", "b"]), gold, pred)
    assert got == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_span_f1_zero_denominators_like_seqeval():
    gold = [["O", "O"], []]
    pred = [["O", "O"], []]
    got = assert_matches_seqeval(SpanF1(["a"]), gold, pred)
    assert got == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert SpanF1(["a"]).per_type(include_empty=True) == [
        {"type": "a", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    ]


def test_span_f1_perfect_and_dtype():
    gold = [["B-a", "I-a", "O", "B-b"]]
    m = SpanF1(["a", "b"])
    m.update(gold, gold)
    out = m.compute()
    assert set(out) == {"precision", "recall", "f1"}
    assert all(v.dtype == torch.float64 and float(v) == 1.0 for v in out.values())


def test_span_f1_is_per_sentence_for_pathological_tags():
    # seqeval's chunker can leak a span start across sentences for tags like 'X' or '.-x' (its result then
    # depends on sentence order). SpanF1 scores each sentence as seqeval scores it alone: the counts equal the
    # sum of per-sentence seqeval counts and do not depend on order.
    rng = random.Random(7)
    gold = [[rng.choice(WEIRD_TAGS) for _ in range(rng.randint(0, 8))] for _ in range(200)]
    pred = [[rng.choice(WEIRD_TAGS) for _ in g] for g in gold]
    m = SpanF1(["x", "y"])
    m.update(pred, gold)
    tp = n_pred = n_gold = 0
    for g, p in zip(gold, pred, strict=True):
        gs, ps = set(seqeval_spans(g)), set(seqeval_spans(p))
        tp, n_pred, n_gold = tp + len(gs & ps), n_pred + len(ps), n_gold + len(gs)
    assert (int(m.tp), int(m.n_pred), int(m.n_gold)) == (tp, n_pred, n_gold)
    order = list(range(len(gold)))
    rng.shuffle(order)
    m2 = SpanF1(["x", "y"])
    m2.update([pred[i] for i in order], [gold[i] for i in order])
    assert {k: float(v) for k, v in m2.compute().items()} == {k: float(v) for k, v in m.compute().items()}


# ---------------------------------------------------------------- merging (DDP simulation)
def test_span_f1_merge_equals_whole():
    gold, pred = random_corpus(42)
    half = len(gold) // 2
    whole = SpanF1(TYPES)
    whole.update(pred, gold)
    expected = {k: float(v) for k, v in whole.compute().items()}

    a, b = SpanF1(TYPES), SpanF1(TYPES)
    a.update(pred[:half], gold[:half])
    b.update(pred[half:], gold[half:])
    # 1) torchmetrics' own merge (sum reduction)
    a.merge_state(b)
    assert {k: float(v) for k, v in a.compute().items()} == expected
    assert a.per_type() == whole.per_type()

    # 2) by hand: what an all-reduce(sum) of every state does
    c, d = SpanF1(TYPES), SpanF1(TYPES)
    c.update(pred[:half], gold[:half])
    d.update(pred[half:], gold[half:])
    merged = SpanF1(TYPES)
    for name, value in c.metric_state.items():
        setattr(merged, name, value + d.metric_state[name])
    merged._update_count = 1  # avoid torchmetrics' "compute before update" warning
    assert {k: float(v) for k, v in merged.compute().items()} == expected
    assert merged.per_type() == whole.per_type()


def test_sentence_accuracy_merge_equals_whole():
    a, b, whole = SentenceAccuracy(), SentenceAccuracy(), SentenceAccuracy()
    ok = torch.tensor([True, False, True])
    tags = [["O"], ["B-x"], ["O", "O"]]
    a.update(ok[:2], tags[:2], tags[:2])
    b.update(ok[2:], tags[2:], tags[2:])
    whole.update(ok, tags, tags)
    a.merge_state(b)
    assert float(a.compute()) == float(whole.compute()) == 2 / 3


def test_per_type_syncs_like_compute():
    # Fake a 2-rank world where both ranks hold the same states: synced counts double, ratios stay.
    def fake_gather(tensor, group=None):
        return [tensor.clone(), tensor.clone()]

    kwargs = {"dist_sync_fn": fake_gather, "distributed_available_fn": lambda: True}
    m = SpanF1(["a", "b"], **kwargs)
    gold = [["B-a", "I-a", "O", "B-b"], ["B-zz"]]
    pred = [["B-a", "I-a", "O", "B-a"], ["O"]]
    m.update(pred, gold)
    rows = {r["type"]: r for r in m.per_type()}
    assert {t: r["support"] for t, r in rows.items()} == {"a": 2, "b": 2, OTHER_TYPE: 2}
    assert rows["a"]["precision"] == 0.5 and rows["a"]["recall"] == 1.0
    assert int(m.n_gold) == 3  # local states restored after the sync
    assert float(m.compute()["recall"]) == 1 / 3


# ---------------------------------------------------------------- real ATIS
def _read_tags(path):
    return [line.split() for line in path.read_text().splitlines()]


def perturb(gold, all_tags, seed):
    """~5% tags swapped to another tag of the set, some B -> O, some B -> I (malformed BIO)."""
    rng = random.Random(seed)
    pred = []
    for sent in gold:
        p = []
        for tag in sent:
            r = rng.random()
            if r < 0.05:
                tag = rng.choice([t for t in all_tags if t != tag])
            elif tag.startswith("B-") and r < 0.08:
                tag = "O"
            elif tag.startswith("B-") and r < 0.11:
                tag = "I-" + tag[2:]
            p.append(tag)
        pred.append(p)
    return pred


@pytest.fixture(scope="module")
def atis():
    if not (ATIS_DIR / "test/seq.out").is_file():
        pytest.skip(f"ATIS not found at {ATIS_DIR}: real-data checks need ../shared/data/atis")
    train = _read_tags(ATIS_DIR / "train/seq.out")
    test = _read_tags(ATIS_DIR / "test/seq.out")
    return train, test


@pytest.mark.parametrize("seed", [0, 1])
def test_span_f1_equals_seqeval_on_atis(atis, seed):
    train, gold = atis
    # Types come from TRAIN, as in real training: test-only types must still be scored (-> "<other>").
    types = entity_types(t for s in train for t in s)
    tag_set = sorted({t for s in train + gold for t in s})
    pred = perturb(gold, tag_set, seed)
    got = assert_matches_seqeval(SpanF1(types), gold, pred, batch_sizes=(32, 17, 1, 64))
    assert 0.5 < got["f1"] < 1.0  # sanity: the perturbation hurts, but not absurdly


def test_span_f1_atis_gold_vs_gold_is_perfect(atis):
    _, gold = atis
    m = SpanF1(entity_types(t for s in gold for t in s))
    assert run_span_f1(m, gold, gold, batch_sizes=(64,)) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}


# ---------------------------------------------------------------- SentenceAccuracy
def test_sentence_accuracy_hand_example():
    m = SentenceAccuracy()
    gold = [["O", "B-x"], ["B-y", "I-y"], ["O"], ["O", "O", "B-x"]]
    pred = [["O", "B-x"], ["B-y", "O"], ["O"], ["O", "O", "B-x"]]
    # intent ok + tags ok, intent ok + one tag wrong, intent wrong + tags ok, all ok -> 2 of 4
    m.update(torch.tensor([True, True, False, True]), pred, gold)
    assert float(m.compute()) == 0.5
    m.update(torch.tensor([True]), [["B-x"]], [["B-x"]])  # 3 of 5
    assert float(m.compute()) == 0.6
    assert (int(m.correct), int(m.total)) == (3, 5)


def test_sentence_accuracy_empty_is_zero():
    m = SentenceAccuracy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchmetrics warns on compute() before update()
        assert float(m.compute()) == 0.0


# ---------------------------------------------------------------- report_from_confusion
def test_report_from_confusion_hand_3x3():
    # rows = gold, cols = pred
    cm = torch.tensor([[5, 1, 0], [2, 3, 1], [0, 0, 0]])
    rows = report_from_confusion(cm, ["a", "b", "c"])
    p_a, r_a = 5 / 7, 5 / 6
    p_b, r_b = 3 / 4, 3 / 6
    expected = [
        {"label": "a", "precision": p_a, "recall": r_a, "f1": 2 * p_a * r_a / (p_a + r_a), "support": 6},
        {"label": "b", "precision": p_b, "recall": r_b, "f1": 2 * p_b * r_b / (p_b + r_b), "support": 6},
        {"label": "c", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
    ]
    assert rows == expected
    assert rows[0]["f1"] == pytest.approx(10 / 13, abs=1e-12)  # = 2tp / (pred + gold)


def test_report_from_confusion_matches_torchmetrics_convention():
    from torchmetrics.functional.classification import (
        multiclass_confusion_matrix,
        multiclass_precision,
        multiclass_recall,
    )

    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, 4, (200,), generator=g)
    preds = torch.where(torch.rand(200, generator=g) < 0.6, target, torch.randint(0, 4, (200,), generator=g))
    rows = report_from_confusion(multiclass_confusion_matrix(preds, target, num_classes=4), list("wxyz"))
    prec = multiclass_precision(preds, target, num_classes=4, average=None)
    rec = multiclass_recall(preds, target, num_classes=4, average=None)
    for i, row in enumerate(rows):
        assert row["precision"] == pytest.approx(float(prec[i]), abs=1e-6)
        assert row["recall"] == pytest.approx(float(rec[i]), abs=1e-6)
        assert row["support"] == int((target == i).sum())


def test_report_from_confusion_bad_shapes():
    with pytest.raises(ValueError):
        report_from_confusion(torch.zeros(2, 3), ["a", "b"])
    with pytest.raises(ValueError):
        report_from_confusion(torch.zeros(2, 2), ["a", "b", "c"])


# ---------------------------------------------------------------- input validation
def test_length_mismatch_raises():
    m = SpanF1(["x"])
    with pytest.raises(ValueError, match="sentence 1"):
        m.update([["O"], ["B-x", "O"]], [["O"], ["B-x"]])
    with pytest.raises(ValueError):
        m.update([["O"]], [["O"], ["O"]])
    with pytest.raises(TypeError):
        m.update(["B-x"], ["B-x"])  # a flat tag list is not a batch of sentences
    s = SentenceAccuracy()
    with pytest.raises(ValueError, match="sentence 0"):
        s.update(torch.tensor([True]), [["O", "O"]], [["O"]])
    with pytest.raises(ValueError):
        s.update(torch.tensor([True, True]), [["O"]], [["O"]])
