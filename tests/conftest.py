"""Shared fixtures: a tiny random BERT with its own WordPiece tokenizer, and tiny datasets in tmp dirs.

Everything is built in-process and offline, so the unit tests never need the real encoder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "chatft" / "resources" / "demo"
ATIS = REPO.parent / "shared" / "data" / "atis"
DEMO_CONFIG = REPO / "configs" / "demo.yaml"
#: No progress bar, no model summary: what every CLI test passes so its output is only chatft's lines.
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def cli_args(
    encoder: str | Path | None = None,
    data: str | Path | None = None,
    root: str | Path | None = None,
    *,
    config: str | Path | None = DEMO_CONFIG,
    quiet: bool = True,
    **options: object,
) -> list[str]:
    """The options a CLI test passes, after the command: the demo recipe, a (tiny) encoder, a data folder,
    the run's root, then ``options`` (``data__batch_size=16`` is ``--data.batch_size 16``) and :data:`QUIET`.

    ``main(["fit", *cli_args(tiny_encoder, data, tmp_path / "run", trainer__max_epochs=1)])``
    """
    args = ["--config", str(config)] if config else []
    for flag, value in (
        ("--model.encoder", encoder),
        ("--data.data_dir", data),
        ("--trainer.default_root_dir", root),
    ):
        if value is not None:
            args += [flag, str(value)]
    for key, value in options.items():
        args += [f"--{key.replace('__', '.')}", str(value).lower() if isinstance(value, bool) else str(value)]
    return [*args, *QUIET] if quiet else args


def _vocab_words() -> list[str]:
    words: set[str] = set()
    for split in ("train", "dev", "test"):
        for line in (DEMO / split / "seq.in").read_text(encoding="utf-8").splitlines():
            words.update(line.split())
    # Keep the vocabulary small and force some words into several sub-words (##pieces).
    keep = sorted(w for w in words if len(w) <= 5)
    pieces = [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789'"]
    letters = list("abcdefghijklmnopqrstuvwxyz0123456789'")
    return keep + letters + pieces


def build_tiny_encoder(folder: Path, seed: int = 0, extra_vocab: list[str] | None = None) -> Path:
    """Write a 2-layer, 32-wide random BERT and a fast WordPiece tokenizer to ``folder`` (``extra_vocab``: more
    tokens, e.g. the Chinese characters a test's data uses)."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = specials + [
        w for w in dict.fromkeys(_vocab_words() + list(extra_vocab or [])) if w not in specials
    ]
    tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    tok.save_pretrained(folder)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> str:
    """Path of a tiny random BERT folder (model + fast tokenizer)."""
    return str(build_tiny_encoder(tmp_path_factory.mktemp("tiny-bert")))


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_encoder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_encoder)


def write_jointbert(folder: Path, splits: dict[str, list[tuple[str, str, str]]]) -> Path:
    """Write ``{split: [(words, tags, intent), ...]}`` in the JointBERT layout."""
    for split, rows in splits.items():
        d = folder / split
        d.mkdir(parents=True, exist_ok=True)
        (d / "seq.in").write_text("".join(r[0] + "\n" for r in rows), encoding="utf-8")
        (d / "seq.out").write_text("".join(r[1] + "\n" for r in rows), encoding="utf-8")
        (d / "label").write_text("".join(r[2] + "\n" for r in rows), encoding="utf-8")
    return folder


def demo_subset(folder: Path, n_train: int = 64, n_eval: int = 23) -> Path:
    """A small slice of the demo data (odd eval sizes, so DDP shards are uneven)."""
    splits = {}
    for split, n in (("train", n_train), ("dev", n_eval), ("test", n_eval)):
        rows = zip(
            (DEMO / split / "seq.in").read_text(encoding="utf-8").splitlines(),
            (DEMO / split / "seq.out").read_text(encoding="utf-8").splitlines(),
            (DEMO / split / "label").read_text(encoding="utf-8").splitlines(),
            strict=True,
        )
        splits[split] = list(rows)[:n]
    return write_jointbert(folder, splits)


@pytest.fixture
def demo_small(tmp_path) -> Path:
    return demo_subset(tmp_path / "data")
