"""A split's features as a memory-mapped Arrow file (Hugging Face ``datasets``), built once per cache key.

Why: holding every tokenized utterance as Python objects costs about 7 KB per utterance in *every* DDP
process, and tokenizing a million utterances takes minutes in each of them. An Arrow file is written once
(by one process, ``--data.num_proc`` workers tokenizing in parallel) and memory-mapped by all of them: its
pages are shared page cache, not private memory, and a later run opens it in milliseconds.

The build is columnar: one call of the fast tokenizer's Rust backend per chunk of :data:`CHUNK` utterances,
then the ``run_ner.py`` alignment of :func:`chatft.core.features.tokenize_examples` done with numpy on the
whole chunk (no Python object per utterance), and the columns handed to Arrow as flat arrays and offsets.
A chunk with an utterance that rule's fix-up would touch (a word without sub-words) is made by
``tokenize_examples`` itself, so the rows are identical either way (``tests/test_arrow_features.py``
compares them row by row with the in-memory features). Columns: the :class:`~chatft.core.features.Features`
fields (``input_ids``, ``labels``, ``word_starts``, ``word_tags``, ``intent``, ``n_words``, ``gold_tags``)
plus ``length`` (tokens), which the length-bucketed sampler reads as one numpy column. ``index`` is the row
number.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections.abc import Sequence
from contextlib import contextmanager
from itertools import chain
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
from datasets.arrow_writer import ArrowWriter

from chatft.core.features import IGNORE, Features, tokenize_examples
from chatft.core.formats import Example

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
#: The one file of an entry (an Arrow stream, as ``datasets`` writes them).
ARROW_FILE = "features.arrow"
#: Utterances per tokenizer call, per worker task and per Arrow record batch while building.
CHUNK = 10_000
#: Rows per Arrow gather when a split is iterated.
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


def _backend(tokenizer, max_length: int):
    """A private copy of the Rust backend, set as ``tokenizer(words, truncation=True, max_length=...)`` sets it.

    (transformers' call stores truncation on the shared backend; a copy keeps the caller's tokenizer as is.)
    """
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    backend.enable_truncation(
        max_length, stride=0, strategy="longest_first", direction=tokenizer.truncation_side
    )
    backend.encode_special_tokens = bool(getattr(tokenizer, "split_special_tokens", False))
    return backend


def _offsets(sizes: np.ndarray) -> np.ndarray:
    out = np.zeros(len(sizes) + 1, dtype=np.int32)
    np.cumsum(sizes, out=out[1:])
    return out


def _lists(offsets: np.ndarray, values) -> pa.ListArray:
    values = values if isinstance(values, pa.Array) else pa.array(values)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)


def _columnar(backend, examples: Sequence[Example], max_length: int, intent_index: dict, slot_index: dict):
    """The chunk's feature columns (a ``pa.Table``), or None where the per-utterance rule must make them."""
    words = [list(ex.words) for ex in examples]
    has_tags = [ex.tags is not None for ex in examples]
    if any(has_tags) and not all(has_tags):
        return None
    encodings = backend.encode_batch(words, is_pretokenized=True, add_special_tokens=True)
    sizes = np.fromiter((len(e.ids) for e in encodings), dtype=np.int32, count=len(encodings))
    token_off = _offsets(sizes)
    ids = np.fromiter(chain.from_iterable(e.ids for e in encodings), dtype=np.int32, count=int(token_off[-1]))
    # Word ids, -1 for special tokens (None): numpy turns None into NaN in a float array.
    wid = np.array(list(chain.from_iterable(e.word_ids for e in encodings)), dtype=np.float64)
    wid = np.nan_to_num(wid, nan=-1).astype(np.int32)
    n = len(examples)
    row = np.repeat(np.arange(n, dtype=np.int32), sizes)
    previous = np.empty_like(wid)
    previous[1:] = wid[:-1]
    previous[token_off[:-1][sizes > 0]] = -1  # a row's first token has no previous one
    start = (wid >= 0) & (wid != previous)  # a word's first sub-word (align_labels, first_subword_positions)
    start_row, start_wid = row[start], wid[start]
    starts_per_row = np.bincount(start_row, minlength=n).astype(np.int32)
    start_off = _offsets(starts_per_row)
    n_words = np.fromiter((len(w) for w in words), dtype=np.int32, count=n)
    # tokenize_examples' fix-up applies unless the first sub-words name words 0, 1, 2, ... in order and
    # every word has one (or the utterance was cut by truncation): such a chunk is left to it.
    in_order = start_wid == np.arange(len(start_wid), dtype=np.int32) - start_off[start_row]
    complete = (starts_per_row == n_words) | (sizes >= max_length)
    if not (in_order.all() and complete.all()):
        return None
    word_off = _offsets(n_words)
    if has_tags[0]:
        flat_tags = pa.array(list(chain.from_iterable(ex.tags for ex in examples)), pa.string())
        gold = _lists(word_off, flat_tags)
    else:
        gold = pa.nulls(n, FEATURES.arrow_schema.field("gold_tags").type)
    if has_tags[0] and slot_index:
        encoded = flat_tags.dictionary_encode()  # each distinct tag looked up once, not once per word
        lookup = np.array([slot_index.get(t, 0) for t in encoded.dictionary.to_pylist()], dtype=np.int32)
        tag_ids = lookup[encoded.indices.to_numpy(zero_copy_only=False)]
    else:
        tag_ids = np.full(int(word_off[-1]), IGNORE, dtype=np.int32)
    labels = np.full(len(ids), IGNORE, dtype=np.int32)
    labels[start] = tag_ids[word_off[start_row] + start_wid]
    positions = np.arange(len(ids), dtype=np.int32) - token_off[row]
    intents = np.fromiter((intent_index.get(ex.intent, 0) for ex in examples), dtype=np.int32, count=n)
    columns = {
        "input_ids": _lists(token_off, ids),
        "labels": _lists(token_off, labels),
        "word_starts": _lists(start_off, positions[start]),
        "word_tags": _lists(start_off, labels[start]),
        "intent": intents,
        "n_words": n_words,
        "length": sizes,
        "gold_tags": gold,
    }
    return pa.Table.from_pydict(columns, schema=FEATURES.arrow_schema)


def _from_features(features: Sequence[Features]) -> pa.Table:
    """The same columns from :class:`Features` objects (the chunks the columnar path leaves to the rule)."""
    columns = {
        "input_ids": [f.input_ids for f in features],
        "labels": [f.labels for f in features],
        "word_starts": [f.word_starts for f in features],
        "word_tags": [f.word_tags for f in features],
        "intent": [f.intent for f in features],
        "n_words": [f.n_words for f in features],
        "length": [len(f.input_ids) for f in features],
        "gold_tags": [None if f.gold_tags is None else list(f.gold_tags) for f in features],
    }
    return pa.Table.from_pydict(columns, schema=FEATURES.arrow_schema)


class _Encoder:
    """Turns chunks of examples into tables; one per build (in each worker process with ``num_proc`` > 1)."""

    def __init__(
        self,
        examples: Sequence[Example],
        tokenizer,
        max_length: int,
        intent_labels: list[str],
        slot_labels: list[str],
    ) -> None:
        self.examples = examples
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.intent_index = {label: i for i, label in enumerate(intent_labels)}
        self.slot_index = {label: i for i, label in enumerate(slot_labels)}
        self.backend = _backend(tokenizer, max_length)

    def __call__(self, start: int) -> pa.Table:
        chunk = self.examples[start : start + CHUNK]
        table = _columnar(self.backend, chunk, self.max_length, self.intent_index, self.slot_index)
        if table is not None:
            return table
        slots = self.slot_index
        features = tokenize_examples(
            self.tokenizer,
            [ex.words for ex in chunk],
            self.max_length,
            word_tag_ids=[
                [slots.get(t, 0) for t in ex.tags] if slots and ex.tags is not None else None for ex in chunk
            ],
            intents=[self.intent_index.get(ex.intent, 0) for ex in chunk],
            gold_tags=[ex.tags for ex in chunk],
        )
        return _from_features(features)


_WORKER: _Encoder | None = None


def _init_worker(*args) -> None:
    global _WORKER
    _WORKER = _Encoder(*args)


def _work(start: int) -> pa.Table:
    return _WORKER(start)


def build_split(
    folder: Path,
    examples: Sequence[Example],
    tokenizer,
    max_length: int,
    intent_labels: list[str],
    slot_labels: list[str],
    num_proc: int = 1,
) -> dict:
    """Write the features of ``examples`` to ``folder/features.arrow``; returns the row and truncation counts.

    With ``num_proc`` > 1, worker processes tokenize chunks in parallel (forked where the platform allows:
    they then inherit the examples instead of receiving a copy) and this process writes their tables in
    order; each process tokenizes on one thread.
    """
    args = (examples, tokenizer, max_length, intent_labels, slot_labels)
    starts = range(0, len(examples), CHUNK)
    truncated = 0
    with ArrowWriter(features=FEATURES, path=str(folder / ARROW_FILE)) as writer, _one_thread():
        if num_proc > 1 and len(starts) > 1:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else None)
            with context.Pool(min(num_proc, len(starts)), _init_worker, args) as pool:
                for table in pool.imap(_work, starts):
                    truncated += _truncated(table)
                    writer.write_table(table)
        else:
            encode = _Encoder(*args)
            for start in starts:
                table = encode(start)
                truncated += _truncated(table)
                writer.write_table(table)
        writer.finalize()
    return {"rows": len(examples), "truncated": truncated}


@contextmanager
def _one_thread():
    """The tokenizer's Rust thread pool off while building: ``num_proc`` processes are the parallelism.

    So ``--data.num_proc N`` uses N cores (1: one), and forked workers inherit the setting instead of
    each warning that parallelism was already used in their parent.
    """
    saved = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = saved


def _truncated(table: pa.Table) -> int:
    kept = table.column("word_starts").combine_chunks().value_lengths().to_numpy()
    return int((kept < table.column("n_words").to_numpy()).sum())


class ArrowSplit:
    """A memory-mapped split as a map-style dataset of :class:`Features` (what the collate function takes).

    ``__getitems__`` fetches a whole batch in one Arrow gather (the DataLoader calls it when it exists);
    ``lengths`` are the ``length`` column, read as one numpy array for the samplers.
    """

    def __init__(self, dataset: datasets.Dataset) -> None:
        self.dataset = dataset

    @classmethod
    def load(cls, folder: Path) -> ArrowSplit:
        return cls(datasets.Dataset.from_file(str(folder / ARROW_FILE)))

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def lengths(self) -> list[int]:
        return self.dataset.data.column("length").to_numpy().tolist()

    @property
    def intents(self) -> list[int]:
        """The ``intent`` column (one id per utterance), read as one array: what the few-shot rules count."""
        return self.dataset.data.column("intent").to_numpy().tolist()

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
