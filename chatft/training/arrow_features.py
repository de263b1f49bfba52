"""A split's features as a memory-mapped Hugging Face ``datasets`` Arrow dataset, built once per cache key.

Why: holding every tokenized utterance as Python objects costs about 7 KB per utterance in *every* DDP
process, and tokenizing a million utterances takes minutes in each of them. An Arrow file is written once
(by one process, ``--data.num_proc`` workers tokenizing in parallel) and memory-mapped by all of them: its
pages are shared page cache, not private memory, and a second run loads it in well under a second.

The rows are made by the same function as before, :func:`chatft.core.features.tokenize_examples`, so the
features are identical (``tests/test_arrow_features.py`` compares them row by row). Columns: the
:class:`~chatft.core.features.Features` fields (``input_ids``, ``labels``, ``word_starts``, ``word_tags``,
``intent``, ``n_words``, ``gold_tags``) plus ``length`` (tokens), which the length-bucketed sampler reads
without touching the rows. ``index`` is the row number.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import datasets

from chatft.core.features import Features, tokenize_examples
from chatft.core.formats import Example
from chatft.core.labels import LabelVocab

_RAW = datasets.Features(
    {
        "words": datasets.List(datasets.Value("string")),
        "tags": datasets.List(datasets.Value("string")),
        "intent": datasets.Value("string"),
    }
)
_INTS = datasets.List(datasets.Value("int32"))
FEATURES = datasets.Features(
    {
        "input_ids": _INTS,
        "labels": _INTS,
        "word_starts": _INTS,
        "word_tags": _INTS,
        "intent": datasets.Value("int32"),
        "n_words": datasets.Value("int32"),
        "length": datasets.Value("int32"),
        "gold_tags": datasets.List(datasets.Value("string")),
    }
)
#: Utterances per tokenizer call and per Arrow record batch while building.
BATCH = 1000


def tokenizer_digest(tokenizer) -> str:
    """SHA-256 of the tokenizer's full serialized state (vocabulary, normalizer, added tokens) and class.

    A fast tokenizer's backend JSON holds everything that decides its output, added tokens included, so
    adding a token changes the cache key. A tokenizer without one cannot be cached (it cannot align words
    either: :func:`~chatft.core.features.tokenize_examples` needs ``word_ids``).
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise TypeError(f"{type(tokenizer).__name__}: not a fast tokenizer (no backend_tokenizer)")
    state = json.loads(backend.to_str())
    # Truncation and padding are call-time settings the fast tokenizer stores after a call, not its identity.
    state.pop("truncation", None)
    state.pop("padding", None)
    h = hashlib.sha256(json.dumps(state, sort_keys=True).encode())
    h.update(f"\0{type(tokenizer).__name__}\0{tokenizer.unk_token}".encode())
    return h.hexdigest()


def _rows(examples: Sequence[Example]):
    for ex in examples:
        yield {
            "words": list(ex.words),
            "tags": None if ex.tags is None else list(ex.tags),
            "intent": ex.intent,
        }


def _encode(
    batch: dict, tokenizer, max_length: int, intent_labels: list[str], slot_labels: list[str]
) -> dict:
    """One batch of raw rows -> feature columns, exactly as ``IntentSlotDataModule.encode`` makes them."""
    intents = LabelVocab.from_list(intent_labels)
    slots = LabelVocab.from_list(slot_labels) if slot_labels else None
    tags = batch["tags"]
    feats = tokenize_examples(
        tokenizer,
        batch["words"],
        max_length,
        word_tag_ids=[slots.ids(t) if slots and t is not None else None for t in tags],
        intents=[intents.id(i) for i in batch["intent"]],
        gold_tags=tags,
    )
    return {
        "input_ids": [f.input_ids for f in feats],
        "labels": [f.labels for f in feats],
        "word_starts": [f.word_starts for f in feats],
        "word_tags": [f.word_tags for f in feats],
        "intent": [f.intent for f in feats],
        "n_words": [f.n_words for f in feats],
        "length": [len(f.input_ids) for f in feats],
        "gold_tags": [None if f.gold_tags is None else list(f.gold_tags) for f in feats],
    }


def build_split(
    folder: Path,
    examples: Sequence[Example],
    tokenizer,
    max_length: int,
    intent_labels: list[str],
    slot_labels: list[str],
    num_proc: int = 1,
) -> dict:
    """Write the features of ``examples`` as a ``save_to_disk`` dataset in ``folder``; returns counts.

    The raw rows go to Arrow first (``from_generator``), so the ``num_proc`` tokenizing workers
    memory-map them instead of receiving a pickled copy.
    """
    scratch = Path(tempfile.mkdtemp(prefix=".scratch-", dir=folder.parent))
    # Our own fingerprints (datasets would otherwise hash the examples and the tokenizer to make them).
    tag = hashlib.sha256(str(folder).encode()).hexdigest()[:32]
    try:
        raw = datasets.Dataset.from_generator(
            _rows,
            features=_RAW,
            cache_dir=str(scratch / "raw"),
            gen_kwargs={"examples": examples},
            fingerprint=f"raw-{tag}",
            writer_batch_size=BATCH,
        )
        feats = raw.map(
            _encode,
            batched=True,
            batch_size=BATCH,
            writer_batch_size=BATCH,
            num_proc=num_proc if num_proc > 1 else None,
            remove_columns=raw.column_names,
            features=FEATURES,
            fn_kwargs={
                "tokenizer": tokenizer,
                "max_length": max_length,
                "intent_labels": intent_labels,
                "slot_labels": slot_labels,
            },
            cache_file_name=str(scratch / "features.arrow"),
            new_fingerprint=f"features-{tag}",
            desc="tokenizing",
        )
        feats.save_to_disk(str(folder))
        n_words = feats.data.column("n_words").to_numpy()
        kept = feats.data.column("word_starts").combine_chunks().value_lengths().to_numpy()
        return {"rows": len(feats), "truncated": int((kept < n_words).sum())}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class ArrowSplit:
    """A memory-mapped split as a map-style dataset of :class:`Features` (what the collate function takes).

    ``__getitems__`` fetches a whole batch in one Arrow gather (the DataLoader calls it when it exists);
    ``lengths`` are read from the ``length`` column for the samplers.
    """

    def __init__(self, dataset: datasets.Dataset) -> None:
        self.dataset = dataset

    @classmethod
    def load(cls, folder: Path) -> ArrowSplit:
        return cls(datasets.load_from_disk(str(folder)))

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def lengths(self) -> list[int]:
        return self.dataset.data.column("length").to_numpy().tolist()

    @property
    def features(self) -> ArrowSplit:
        """Itself: indexable like the list of Features the in-memory split holds."""
        return self

    def __getitems__(self, indices: Sequence[int]) -> list[Features]:
        cols = self.dataset[list(indices)]
        return [
            Features(
                input_ids=cols["input_ids"][k],
                labels=cols["labels"][k],
                word_starts=cols["word_starts"][k],
                word_tags=cols["word_tags"][k],
                intent=cols["intent"][k],
                n_words=cols["n_words"][k],
                index=int(i),
                gold_tags=None if cols["gold_tags"][k] is None else tuple(cols["gold_tags"][k]),
            )
            for k, i in enumerate(indices)
        ]

    def __getitem__(self, i: int) -> Features:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.__getitems__([i])[0]

    def __iter__(self):
        for start in range(0, len(self), BATCH):
            yield from self.__getitems__(range(start, min(start + BATCH, len(self))))
