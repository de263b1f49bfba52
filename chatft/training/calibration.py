"""Fit the temperature and the out-of-scope decision at the end of ``fit``, on dev, with the best weights.

:class:`OOSCalibration` is the callback the CLI installs as the ``oos`` option group
(``--oos.method``, ``--oos.max_acc_drop``, ``--oos.target_recall``, ``--oos.fallback_intent``). When ``fit``
ends it loads the best checkpoint's weights, runs the model over train (pooled features for the Mahalanobis
statistics) and dev (logits and features), and fits:

* the temperature: one scalar, LBFGS on dev negative log-likelihood (Guo et al. 2017); it never changes the
  argmax, so intent accuracy without an OOS threshold is unchanged;
* the class means and shared covariance of train features (Mahalanobis score);
* for every mode and score (:mod:`chatft.core.oos`), the dev threshold; then keeps the combination with the
  highest dev OOS recall among those whose dev in-scope accuracy stays within ``max_acc_drop`` of the
  accuracy without OOS detection (ties: higher dev AUROC). Test data is never read.

The result (:class:`~chatft.core.oos.OOSState`) goes into the module and, atomically, into the best
checkpoint and ``last.ckpt`` (key ``chatft_oos``), so ``test``, ``predict``, ``export``, ``chat`` and
``serve`` on either use it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from chatft.core.errors import ConfigError
from chatft.core.oos import (
    FALLBACK_INTENT,
    METHODS,
    OOSState,
    auroc,
    choose_threshold,
    fit_shared_gaussian,
    fpr_at_tpr,
    operating_point,
    precision_matrix,
)
from chatft.model.checkpoint import OOS_KEY, state_to_checkpoint

log = logging.getLogger(__name__)


def fit_temperature(logits, labels, excluded=(0,), max_iter: int = 200) -> float:
    """The temperature T minimizing the NLL of ``softmax(logits / T)`` (LBFGS over log T, float64).

    Columns in ``excluded`` are never predicted (``<unk>``; the OOS class in threshold mode) and are masked;
    rows whose label is excluded are dropped.
    """
    x = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    # Drop excluded columns (a -inf column would make the gradient NaN) and rows labelled with them.
    cols = [c for c in range(x.size(-1)) if c not in set(excluded)] or list(range(x.size(-1)))
    new_id = torch.full((x.size(-1),), -1, dtype=torch.long)
    new_id[cols] = torch.arange(len(cols))
    y = new_id[y]
    keep = y >= 0
    x, y = x[keep][:, cols], y[keep]
    if not len(y):
        return 1.0
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp())


@torch.no_grad()
def collect(
    model, features, pad_id: int, device, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(intent logits [N, I], pooled features [N, H], gold intents [N])`` of a list of Features, in order."""
    from chatft.model.batching import collate
    from chatft.training.samplers import EvalBatchSampler

    was_training = model.training
    model.eval()
    sampler = EvalBatchSampler([len(f.input_ids) for f in features], batch_size)
    loader = DataLoader(features, batch_sampler=sampler, collate_fn=lambda b: collate(b, pad_id))
    n = len(features)
    logits = feats = None
    gold = np.zeros(n, dtype=np.int64)
    for batch in loader:
        out, _, pooled = model(
            batch["input_ids"].to(device),
            batch["attention_mask"].to(device),
            batch["word_index"].to(device),
            return_features=True,
        )
        if logits is None:
            logits = np.zeros((n, out.size(-1)))
            feats = np.zeros((n, pooled.size(-1)))
        idx = batch["index"].numpy()
        # Features carry their position in the split as ``index``.
        logits[idx] = out.float().cpu().numpy()
        feats[idx] = pooled.float().cpu().numpy()
        gold[idx] = batch["intent"].numpy()
    model.train(was_training)
    return logits, feats, gold


def calibrate(
    dev_logits,
    dev_gold,
    dev_features=None,
    train_features=None,
    train_gold=None,
    oos_index: int | None = None,
    method: str = "auto",
    max_acc_drop: float = 0.01,
    target_recall: float | None = None,
    fallback_intent: str = FALLBACK_INTENT,
) -> OOSState:
    """Choose temperature, mode, score and threshold on dev (see the module docstring); returns the state.

    The ``class`` and ``both`` modes are tried only when ``train_gold`` has examples of ``oos_index`` (the OOS
    label was trained as a class); otherwise only ``threshold``.
    """
    if method != "auto" and method not in METHODS:
        raise ConfigError(f"--oos.method {method!r}: expected auto or one of {', '.join(METHODS)}")
    logits = np.asarray(dev_logits, dtype=np.float64)
    gold = np.asarray(dev_gold)
    n_intents = logits.shape[1]
    in_ids = [i for i in range(1, n_intents) if i != oos_index]
    means = precision = None
    class_ids: list[int] = []
    if train_features is not None and train_gold is not None:
        present = set(np.asarray(train_gold).tolist())
        class_ids = [i for i in in_ids if i in present]
        if class_ids:
            means, cov = fit_shared_gaussian(train_features, train_gold, class_ids)
            precision = precision_matrix(cov)
    is_oos = gold == oos_index if oos_index is not None else np.zeros(len(gold), bool)
    dev_has_oos = bool(is_oos.any())
    oos_in_train = (
        oos_index is not None and train_gold is not None and bool((np.asarray(train_gold) == oos_index).any())
    )
    modes = ["class", "threshold", "both"] if oos_in_train else ["threshold"]
    methods = list(METHODS) if method == "auto" else [method]
    if means is None:
        methods = [m for m in methods if m != "mahalanobis"]
        if not methods:
            raise ConfigError("--oos.method mahalanobis needs training features (a train split)")

    def state_for(mode: str) -> OOSState:
        base = OOSState(mode=mode, oos_index=oos_index, fallback_intent=fallback_intent)
        t = fit_temperature(logits, gold, base.excluded())
        return OOSState(
            temperature=t,
            mode=mode,
            oos_index=oos_index,
            fallback_intent=fallback_intent,
            class_ids=class_ids,
            means=means,
            precision=precision,
        )

    # The reference: in-scope accuracy with no OOS detection at all (OOS logit ignored, no threshold).
    plain = state_for("threshold")
    pred_plain = plain.probabilities(logits).argmax(-1)
    reference = float((pred_plain[~is_oos] == gold[~is_oos]).mean()) if (~is_oos).any() else 0.0

    rows, states = [], []
    for mode in modes:
        base = state_for(mode)
        pred = base.probabilities(logits).argmax(-1)
        flagged = (pred == oos_index) if mode != "threshold" else np.zeros(len(pred), bool)
        in_correct = (pred == gold) & ~flagged
        for m in ["msp"] if mode == "class" else methods:
            scores = base.score(logits, dev_features, m)
            threshold = None
            if mode != "class":
                threshold = choose_threshold(
                    scores[~is_oos],
                    in_correct[~is_oos],
                    scores[is_oos],
                    flagged[is_oos],
                    max_acc_drop=max_acc_drop,
                    target_recall=target_recall,
                    reference_acc=reference,
                )
            op = operating_point(
                threshold, scores[~is_oos], in_correct[~is_oos], scores[is_oos], flagged[is_oos]
            )
            rows.append(
                {
                    "mode": mode,
                    "method": None if mode == "class" else m,
                    "temperature": base.temperature,
                    "threshold": threshold,
                    "in_scope_acc": op.in_scope_acc,
                    "oos_recall": op.oos_recall,
                    "auroc": auroc(scores[~is_oos], scores[is_oos]) if dev_has_oos else None,
                    "fpr95": fpr_at_tpr(scores[~is_oos], scores[is_oos]) if dev_has_oos else None,
                }
            )
            states.append((base, m, threshold))

    if dev_has_oos:
        ok = [i for i, r in enumerate(rows) if r["in_scope_acc"] >= reference - max_acc_drop - 1e-12]
        ok = ok or list(range(len(rows)))
        best = max(ok, key=lambda i: (rows[i]["oos_recall"], rows[i]["auroc"] or 0.0, -i))
    else:
        # Nothing to choose a score on: the calibrated softmax (its threshold then keeps target_recall of dev).
        wanted = methods[0] if method != "auto" else "msp"
        best = next(i for i, r in enumerate(rows) if r["mode"] == modes[-1] and r["method"] == wanted)
    base, m, threshold = states[best]
    for i, r in enumerate(rows):
        r["chosen"] = i == best
    return OOSState(
        temperature=base.temperature,
        method=m,
        mode=base.mode,
        threshold=threshold,
        oos_index=oos_index,
        fallback_intent=fallback_intent,
        class_ids=class_ids,
        means=means,
        precision=precision,
        dev=[{**r, "reference_acc": reference} for r in rows],
    )


def add_to_checkpoint(path: str | Path, state: OOSState) -> None:
    """Write ``state`` into an existing checkpoint file, atomically (the file is whole, old or new)."""
    from chatft.model.checkpoint import load_checkpoint
    from chatft.training.checkpoint import atomic_save

    ckpt = load_checkpoint(path)
    ckpt[OOS_KEY] = state_to_checkpoint(state)
    atomic_save(ckpt, path)


class OOSCalibration(L.Callback):
    """At the end of ``fit``: temperature, Mahalanobis statistics and OOS threshold, chosen on dev.

    Args:
        method: OOS score: ``auto`` (the best on dev), ``msp`` (max calibrated softmax), ``energy`` or
            ``mahalanobis``.
        max_acc_drop: The operating point: the threshold may cost at most this much dev in-scope accuracy
            (0.01 = 1 point) against no OOS detection.
        target_recall: Without OOS examples in dev there is no threshold; this opts in to one that keeps
            this share of dev in-scope utterances (e.g. 0.97). With OOS examples it replaces the rule above.
        fallback_intent: The intent name given to out-of-scope utterances (Rasa's ``nlu_fallback``).
    """

    def __init__(
        self,
        method: str = "auto",
        max_acc_drop: float = 0.01,
        target_recall: float | None = None,
        fallback_intent: str = FALLBACK_INTENT,
    ) -> None:
        if method != "auto" and method not in METHODS:
            raise ConfigError(f"--oos.method {method!r}: expected auto or one of {', '.join(METHODS)}")
        if not 0.0 <= max_acc_drop <= 1.0:
            raise ConfigError(f"--oos.max_acc_drop must be in [0, 1], got {max_acc_drop}")
        if target_recall is not None and not 0.0 < target_recall <= 1.0:
            raise ConfigError(f"--oos.target_recall must be in (0, 1], got {target_recall}")
        if not fallback_intent:
            raise ConfigError("--oos.fallback_intent must not be empty")
        self.method = method
        self.max_acc_drop = max_acc_drop
        self.target_recall = target_recall
        self.fallback_intent = fallback_intent

    def on_fit_end(self, trainer: L.Trainer, pl_module) -> None:
        if trainer.interrupted or trainer.sanity_checking:
            return
        dm = trainer.datamodule
        datasets = getattr(dm, "datasets", {})
        if "dev" not in datasets or "train" not in datasets:
            log.warning("no dev split: the temperature and out-of-scope threshold were not fitted")
            return
        ckpt_cb = trainer.checkpoint_callback
        best = getattr(ckpt_cb, "best_model_path", "") or ""
        model = pl_module.model
        if best:
            from chatft.model.checkpoint import load_checkpoint, model_state_dict

            model.load_state_dict(model_state_dict(load_checkpoint(best)))
        pad_id = dm.tokenizer.pad_token_id or 0
        device = pl_module.device
        dev_logits, dev_feats, dev_gold = collect(
            model, datasets["dev"].features, pad_id, device, dm.eval_batch_size
        )
        _, train_feats, train_gold = collect(
            model, datasets["train"].features, pad_id, device, dm.eval_batch_size
        )
        state = calibrate(
            dev_logits,
            dev_gold,
            dev_feats,
            train_feats,
            train_gold,
            oos_index=pl_module.oos_index,
            method=self.method,
            max_acc_drop=self.max_acc_drop,
            target_recall=self.target_recall,
            fallback_intent=self.fallback_intent,
        )
        pl_module.set_oos_state(state)
        chosen = next(r for r in state.dev if r["chosen"])
        log.info(
            "calibration on dev: temperature %.3f; out-of-scope: mode %s, score %s, threshold %s "
            "(dev in-scope acc %.4f, OOS recall %s)",
            state.temperature,
            state.mode,
            state.method,
            state.threshold,
            chosen["in_scope_acc"],
            chosen["oos_recall"],
        )
        if trainer.is_global_zero:
            paths = {p for p in (best, getattr(ckpt_cb, "last_model_path", "")) if p and Path(p).is_file()}
            for path in sorted(paths):
                add_to_checkpoint(path, state)
        trainer.strategy.barrier("chatft-oos-calibrated")
