"""IntentSlotDataModule: read a dataset folder, build label vocabularies, tokenize once, batch.

Labels are built from the training split in ``__init__`` so the CLI can link them into the model at
instantiation (they then land in ``hparams.yaml`` and the checkpoint). Tokenization happens once, in
``setup()``; batches are padded to their longest member and grouped by length for training.

Large data (``--data.cache``, on by itself from :data:`AUTO_CACHE_BYTES` of training data): the labels and
each split's features are cached on disk (:mod:`chatft.data_tools.feature_cache`), the features as
memory-mapped Arrow datasets (:mod:`chatft.training.arrow_features`); one process builds them, every other
process and every later run with the same files, tokenizer and options maps them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import lightning as L
from lightning.pytorch.utilities import rank_zero_only
from torch.utils.data import DataLoader

from chatft.core.entity_resources import EntityResources
from chatft.core.errors import ConfigError
from chatft.core.features import Features, tokenize_examples
from chatft.core.formats import (
    SPLITS,
    Example,
    check_same_kind,
    detect_format,
    has_split,
    missing_split_error,
    orphan_warning,
    read_split,
    split_path,
)
from chatft.core.labels import LabelVocab, slot_tag_vocab
from chatft.core.pairs import in_scope_shape, is_few_shot, label_name_examples
from chatft.core.text import join_words, read_utterances, split_words
from chatft.core.units import MIN_COUNT, MIN_SHARE, choose_units, describe, unk_share
from chatft.data_tools.feature_cache import cache_key, cached_build, default_cache_dir, files_digest
from chatft.model.batching import Collator
from chatft.model.checkpoint import checkpoint_added_tokens, checkpoint_labels
from chatft.model.encoders import DEFAULT_ENCODER, load_tokenizer
from chatft.model.vocabulary import extend_tokenizer
from chatft.training.resume import ResumableBatchSampler, ResumableDataLoader, epoch_progress
from chatft.training.samplers import BucketBatchSampler, EvalBatchSampler

if TYPE_CHECKING:
    from chatft.training.arrow_features import ArrowSplit

log = logging.getLogger(__name__)


@rank_zero_only
def rank_zero_print(line: str) -> None:
    print(line, flush=True)


_STAGE_SPLITS = {"fit": ("train", "dev"), "validate": ("dev",), "test": ("test",), "predict": ("test",)}
#: ``--data.cache auto`` caches when the training split's files hold at least this many bytes (about 50 k
#: ATIS-like utterances): below it, reading and tokenizing in every process takes a few seconds at most.
AUTO_CACHE_BYTES = 8_000_000


def split_files(data_dir: str | Path, split: str, fmt: str) -> list[Path]:
    """The files that hold ``split``, in a fixed order (what the cache key hashes)."""
    path = split_path(data_dir, split, fmt)
    return [path / name for name in ("seq.in", "seq.out", "label")] if fmt == "jointbert" else [path]


class ListDataset:
    """A list of :class:`Features` as a map-style dataset."""

    def __init__(self, features: list[Features]) -> None:
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> Features:
        return self.features[i]

    @property
    def lengths(self) -> list[int]:
        return [len(f.input_ids) for f in self.features]

    @property
    def intents(self) -> list[int]:
        return [f.intent for f in self.features]


class IntentSlotDataModule(L.LightningDataModule):
    """Joint intent + slot data in the jointbert, tsv or jsonl layout (see :mod:`chatft.core.formats`).

    Args:
        data_dir: Folder with the splits (``train`` is required to build labels, ``dev``/``test`` for
            validation and testing). Optional only when labels come from a checkpoint (predict).
        batch_size: Training batch size *per process* (under DDP the effective batch is this x world size).
        eval_batch_size: Batch size for validation/test/predict (default: 2 x batch_size).
        max_length: Maximum sub-word tokens per utterance, special tokens included; longer utterances are
            truncated and their cut words predicted ``O`` (their gold tags still count).
        bucket_by_length: Group training utterances of similar length into batches (less padding).
        bucket_pool_batches: How many batches' worth of shuffled utterances are sorted by length together:
            larger pools pad less, smaller pools keep batches more random (1 sorts within each batch only).
        num_workers: DataLoader worker processes (0 = load in the main process: best on a few CPU cores,
            where tokenization is already done in ``setup()``).
        tokenizer: Tokenizer name or folder; linked from ``model.encoder`` by the CLI.
        seed: Seed of the training batch order.
        pad_to_multiple_of: Round each batch's token length up to a multiple of this (e.g. 16 with
            ``model.compile``, so the compiled graph sees a few shapes instead of one per length).
        predict_file: Text file with one raw utterance per line for ``predict``, split into words by
            :func:`chatft.core.text.split_words`; without it, ``predict`` runs on the test split.
        labels_from: Checkpoint (or export folder) whose label lists to use when there is no ``data_dir``;
            the CLI fills it from ``--ckpt_path``. A checkpoint's added vocabulary units are used with a
            ``data_dir`` too (the ``extend_vocab`` options only act when a model is trained from scratch).
        oos_label: The intent of out-of-scope utterances (CLINC150's ``oos``). Where it occurs in any split it
            is one of the intents (trained as a class when train has examples of it), and ``fit`` fits an
            out-of-scope decision on dev (see :mod:`chatft.training.calibration`); linked to the model.
        cache: Cache the labels and the tokenized splits on disk as memory-mapped Arrow datasets, built by
            one process and shared by all (DDP) and by later runs with the same data files, tokenizer and
            options: ``on``, ``off`` (read and tokenize in every process, in memory), or ``auto`` (on when
            the training split's files hold 8 MB or more, about 50 k utterances).
        cache_dir: Folder of that cache; default $CHATFT_CACHE_DIR, else $XDG_CACHE_HOME/chatft/features,
            else ~/.cache/chatft/features. ``python -m chatft data cache clear`` empties it.
        num_proc: Processes that tokenize a split when the cache builds it.
        extend_vocab: Add the characters the tokenizer maps to ``[UNK]`` (any script) as new tokens when
            they matter: at least ``extend_vocab_min_share`` of the training characters are ``[UNK]``, and
            each added one occurs ``extend_vocab_min_count`` times or more in train (:mod:`chatft.core.units`).
            The model gets a trained embedding row for each (linked as ``model.added_tokens``). English data
            with the default encoder adds none, so its model is unchanged.
        extend_vocab_min_count: Occurrences in the training words a unit needs to be added.
        extend_vocab_min_share: Share of ``[UNK]`` training characters below which nothing is added.
        label_name_utterances: Train on each intent's name, as words (``pto_request``: "pto request", every
            word ``O``), as one more utterance of it (:func:`chatft.core.pairs.label_name_examples`; not the
            out-of-scope label): True always, False never, None only on few-shot training sets (at most
            :data:`chatft.core.pairs.FEW_SHOT_PER_INTENT` utterances per intent on average, at least 2
            intents), where a name is a good share of what is known about its intent (docs/results.md,
            "Few-shot intents"). Not with the cache (a few-shot set never turns it on by itself).
    """

    def __init__(
        self,
        data_dir: str | None = None,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        max_length: int = 128,
        bucket_by_length: bool = True,
        bucket_pool_batches: int = 50,
        num_workers: int = 0,
        tokenizer: str = DEFAULT_ENCODER,
        seed: int = 0,
        pad_to_multiple_of: int = 1,
        predict_file: str | None = None,
        labels_from: str | None = None,
        oos_label: str | None = "oos",
        cache: Literal["auto", "on", "off"] = "auto",
        cache_dir: str | None = None,
        num_proc: int = 1,
        extend_vocab: bool = True,
        extend_vocab_min_count: int = MIN_COUNT,
        extend_vocab_min_share: float = MIN_SHARE,
        label_name_utterances: bool | None = False,
    ) -> None:
        super().__init__()
        if num_proc < 1:
            raise ConfigError(f"data.num_proc must be >= 1, got {num_proc}")
        if batch_size < 1:
            raise ConfigError(f"data.batch_size must be >= 1, got {batch_size}")
        if bucket_pool_batches < 1:
            raise ConfigError(f"data.bucket_pool_batches must be >= 1, got {bucket_pool_batches}")
        if extend_vocab_min_count < 1 or not 0.0 <= extend_vocab_min_share <= 1.0:
            raise ConfigError(
                "data.extend_vocab_min_count must be >= 1 and data.extend_vocab_min_share in [0, 1] "
                f"(got {extend_vocab_min_count} and {extend_vocab_min_share})"
            )
        if max_length < 3:
            raise ConfigError(
                f"data.max_length must be >= 3 (room for [CLS], one word and [SEP]), got {max_length}"
            )
        self.data_dir = data_dir
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or 2 * batch_size
        self.max_length = max_length
        self.bucket_by_length = bucket_by_length
        self.bucket_pool_batches = bucket_pool_batches
        self.num_workers = num_workers
        self.tokenizer_name = tokenizer
        self.seed = seed
        self.pad_to_multiple_of = pad_to_multiple_of
        self.oos_label = oos_label
        self.cache = cache
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.num_proc = num_proc
        #: Hash of each split's files, and of the tokenizer (set when the cache is used).
        self._digests: dict[str, str] = {}
        self._warnings: dict[str, str | None] = {}
        #: The data folder's synonyms, regexes and lookup tables (entities.json; None: none), for the checkpoint.
        self.entity_resources = EntityResources.load(data_dir)
        self.format: str | None = None
        self.examples: dict[str, list[Example]] = {}
        self.datasets: dict[str, ListDataset | ArrowSplit] = {}
        self._tokenizer = None
        self._train_sampler: ResumableBatchSampler | None = None
        self._resume_state: dict | None = None
        self.intent_vocab: LabelVocab | None = None
        self.slot_vocab: LabelVocab | None = None
        #: Units added to the tokenizer (linked to ``model.added_tokens``); empty: the shipped vocabulary.
        self.added_tokens: list[str] = []
        if data_dir is not None:
            self.format = detect_format(data_dir)
        self.extend_vocab = extend_vocab
        self.label_name_utterances = label_name_utterances
        self._label_names: list[Example] | None = None
        self.extend_vocab_min_count = extend_vocab_min_count
        self.extend_vocab_min_share = extend_vocab_min_share
        self.use_cache = data_dir is not None and self._wants_cache()
        if self.use_cache:
            self._labels_from_cache()
        elif data_dir is not None:
            self._build_labels()
        self.predict_file = predict_file
        self.labels_from = labels_from
        #: ``(text, [(word, start, end), ...])`` of each predict input, in input order (set in ``setup``).
        self.predict_inputs: list[tuple[str, list[tuple[str, int, int]]]] = []
        if data_dir is None and labels_from is not None:
            intents, slots = checkpoint_labels(labels_from)
            self.intent_vocab = LabelVocab.from_list(intents)
            self.slot_vocab = LabelVocab.from_list(slots) if slots else None
            self.added_tokens = checkpoint_added_tokens(labels_from)
        elif labels_from is not None and Path(labels_from).expanduser().is_file():
            self._units_from_checkpoint(labels_from)

    def _units_from_checkpoint(self, path: str) -> None:
        """Use the units the checkpoint at ``path`` was trained with: its embedding rows and token ids exist
        only for those, whatever ``--data.extend_vocab*`` would choose on the data now."""
        units = checkpoint_added_tokens(path)
        if units != self.added_tokens:
            rank_zero_print(
                f"vocabulary: {path} was trained with {len(units)} added units and reads text with them "
                f"(the --data.extend_vocab options would add {len(self.added_tokens)} here)"
            )
        self.added_tokens = units

    def _build_labels(self) -> None:
        """Vocabularies from train, and every split checked now, before any training (reading is cheap)."""
        train = self._read("train")
        has_slots = train[0].tags is not None
        self.slot_vocab = slot_tag_vocab(t for ex in train for t in ex.tags or ()) if has_slots else None
        # Check every split now, before any training, not when a stage first needs it (reading is cheap).
        oos_seen = False
        for split in SPLITS[1:]:
            if has_split(self.data_dir, split, self.format):
                examples = self._read(split)
                check_same_kind(self.data_dir, split, self.format, examples, has_slots)
                oos_seen |= any(ex.intent == self.oos_label for ex in examples)
        # An out-of-scope label seen only in dev/test is still an intent name (never trained, never
        # predicted as a class), so gold out-of-scope utterances are told apart from unknown intents.
        extra = [self.oos_label] if self.oos_label and oos_seen else []
        self.intent_vocab = LabelVocab.build([*(ex.intent for ex in train), *extra])
        if self.extend_vocab:
            self.added_tokens = self._choose_units(
                train, self.extend_vocab_min_count, self.extend_vocab_min_share
            )

    def _wants_cache(self) -> bool:
        if self.cache != "auto":
            return self.cache == "on"
        files = split_files(self.data_dir, "train", self.format)
        return sum(p.stat().st_size for p in files if p.is_file()) >= AUTO_CACHE_BYTES

    def _digest(self, split: str) -> str:
        if split not in self._digests:
            self._digests[split] = files_digest(split_files(self.data_dir, split, self.format))
        return self._digests[split]

    def _tokenizer_digest(self, digest) -> str:
        """``digest(self.tokenizer)``, computed once (it serializes the whole vocabulary)."""
        if "tokenizer" not in self._digests:
            self._digests["tokenizer"] = digest(self.tokenizer)
        return self._digests["tokenizer"]

    def _labels_from_cache(self) -> None:
        """Labels from the cache; on a miss, built as without it (every split read and checked), once.

        The key is every split's bytes, the format and ``oos_label``: a hit means the same files already
        passed every check, so nothing is read.
        """
        splits = [s for s in SPLITS if has_split(self.data_dir, s, self.format)]
        files = [p for s in splits for p in split_files(self.data_dir, s, self.format)]
        if "train" not in splits or not all(p.is_file() for p in files):
            self._build_labels()  # raises the reader's one-line error about the missing file
            return
        parts = {s: self._digest(s) for s in splits}
        # The units added to the vocabulary depend on train, the encoder's tokenizer and the extend_vocab options.
        units = [
            self.extend_vocab,
            self.extend_vocab_min_count,
            self.extend_vocab_min_share,
            self.tokenizer_name,
        ]
        key = cache_key(
            {
                "kind": "labels",
                "format": self.format,
                "oos_label": self.oos_label,
                "splits": parts,
                "units": units,
            }
        )

        def build(folder: Path) -> dict:
            self._build_labels()
            return {
                "intent_labels": self.intent_labels,
                "slot_labels": self.slot_labels,
                "added_tokens": self.added_tokens,
                "warnings": [self._warnings[s] for s in splits if self._warnings.get(s)],
            }

        _, info, built = cached_build(self.cache_dir, f"labels-{key}", build, "labels")
        if not built:
            for warning in info["warnings"]:
                log.warning(warning)
            self.intent_vocab = LabelVocab.from_list(info["intent_labels"])
            self.slot_vocab = LabelVocab.from_list(info["slot_labels"]) if info["slot_labels"] else None
            self.added_tokens = list(info.get("added_tokens", []))
            if self.added_tokens:
                rank_zero_print(
                    f"vocabulary: {len(self.added_tokens)} units added (as when the cache was built)"
                )

    def _cached_split(self, split: str):
        """``split`` as a memory-mapped Arrow dataset, built (tokenized) only on a cache miss."""
        from chatft.training.arrow_features import ArrowSplit, build_split, tokenizer_digest

        parts = {
            "kind": "features",
            "split": split,
            "format": self.format,
            "files": self._digest(split),
            "tokenizer": self._tokenizer_digest(tokenizer_digest),
            "max_length": self.max_length,
            "intent_labels": self.intent_labels,
            "slot_labels": self.slot_labels,
        }

        def build(folder: Path) -> dict:
            examples = self._read(split)
            self.examples.pop(split)  # the Arrow rows replace them
            return build_split(
                folder,
                examples,
                self.tokenizer,
                self.max_length,
                self.intent_labels,
                self.slot_labels,
                self.num_proc,
            )

        entry, info, _ = cached_build(self.cache_dir, f"{split}-{cache_key(parts)}", build, split)
        self._warn_truncated(split, info["truncated"], info["rows"])
        return ArrowSplit.load(entry)

    def split_examples(self, split: str) -> list[Example]:
        """The examples of ``split`` (words and label strings) as the model trains on them, read from the files
        now if not in memory (train with the intents' names under ``label_name_utterances``).

        With the cache on they are not kept after ``setup`` (the Arrow rows are what batches are made from).
        """
        if self.use_cache and split not in self.examples:
            self._read(split)
            return self.examples.pop(split)
        return self._training_view(split)

    @property
    def intent_labels(self) -> list[str]:
        """Intent names, ``<unk>`` first; linked to ``model.intent_labels``."""
        return list(self.intent_vocab.labels) if self.intent_vocab else []

    @property
    def slot_labels(self) -> list[str]:
        """BIO tags, ``<unk>`` and ``O`` first; empty for intent-only data. Linked to ``model.slot_labels``."""
        return list(self.slot_vocab.labels) if self.slot_vocab else []

    @property
    def tokenizer(self):
        """The encoder's tokenizer with :attr:`added_tokens` (the same object, so its saved state has them)."""
        if self._tokenizer is None:
            self._tokenizer = extend_tokenizer(load_tokenizer(self.tokenizer_name), self.added_tokens)
        return self._tokenizer

    def _choose_units(self, train: list[Example], min_count: int, min_share: float) -> list[str]:
        """The units to add (:func:`chatft.core.units.choose_units`), announced in one line when any."""
        backend = load_tokenizer(self.tokenizer_name).backend_tokenizer
        words = [ex.words for ex in train]
        before = unk_share(backend, words)
        units = choose_units(backend, before, min_count, min_share)
        if units:
            extended = extend_tokenizer(load_tokenizer(self.tokenizer_name), units).backend_tokenizer
            rank_zero_print(describe(units, before, unk_share(extended, words)))
        return units

    def _read(self, split: str) -> list[Example]:
        if split not in self.examples:
            if self.data_dir is None:
                raise ConfigError(f"no data: set --data.data_dir to a folder with a {split} split")
            if not has_split(self.data_dir, split, self.format):
                raise missing_split_error(self.data_dir, split, self.format)
            self.examples[split] = read_split(self.data_dir, split, self.format)
            warning = orphan_warning(self.data_dir, split, self.format, self.examples[split])
            self._warnings[split] = warning
            if warning:
                log.warning(warning)
        return self.examples[split]

    def check_splits(self, stage: str, validating: bool = True) -> None:
        """Fail now, before any training, when a split that ``stage`` needs is missing.

        ``validating`` is False when fit runs without validation (``--trainer.limit_val_batches 0``), so
        fit then needs no dev split.
        """
        if self.data_dir is None:
            return
        needed = [s for s in _STAGE_SPLITS.get(stage, ()) if validating or s != "dev"]
        for split in needed:
            if not has_split(self.data_dir, split, self.format):
                why = (
                    ": fit checks the model on dev after every epoch and keeps the best one (add a dev split, "
                    "or train without validation: --trainer.limit_val_batches 0)"
                    if stage == "fit" and split == "dev"
                    else f": {stage} reads it"
                )
                raise missing_split_error(self.data_dir, split, self.format, why)

    def encode(self, examples: list[Example]) -> list[Features]:
        """Tokenize and align a list of examples with this module's vocabularies."""
        slots = self.slot_vocab
        return tokenize_examples(
            self.tokenizer,
            [ex.words for ex in examples],
            self.max_length,
            word_tag_ids=[slots.ids(ex.tags) if slots and ex.tags is not None else None for ex in examples],
            intents=[self.intent_vocab.id(ex.intent) for ex in examples],
            gold_tags=[ex.tags for ex in examples],
        )

    def setup(self, stage: str | None = None) -> None:
        if stage == "predict":
            self._setup_predict()
            return
        for split in _STAGE_SPLITS.get(stage or "fit", SPLITS):
            if split in self.datasets:
                continue
            if stage == "fit" and split == "dev" and not has_split(self.data_dir, "dev", self.format):
                continue  # fit without validation (check_splits allowed it): val_dataloader() is empty
            if self.use_cache:
                if split == "train" and self.label_name_utterances is True:
                    raise ConfigError(
                        "--data.label_name_utterances true: not with the feature cache (--data.cache off)"
                    )
                self.datasets[split] = self._cached_split(split)
                continue
            features = self.encode(self._training_view(split))
            self._warn_truncated(split, sum(f.truncated for f in features), len(features))
            self.datasets[split] = ListDataset(features)
        if self.use_cache:
            self.examples.clear()  # read only to build the cache (labels, features): not kept in every process

    def _training_view(self, split: str) -> list[Example]:
        """The examples of ``split`` as the model trains on them: train with the intents' names added as
        utterances under ``label_name_utterances`` (decided and announced once), the files' own otherwise.
        Setup and :meth:`split_examples` both read this, so the features and the words (distillation's
        teacher targets) stay in one order."""
        examples = self._read(split)
        if split != "train":
            return examples
        if self._label_names is None:
            self._label_names = self._label_name_examples(examples)
        return [*examples, *self._label_names] if self._label_names else examples

    def _label_name_examples(self, train: list[Example]) -> list[Example]:
        """The intents' names as utterances, announced in one line; none when ``label_name_utterances`` is
        False, or None on a training set that is not few-shot (out-of-scope utterances are no intent's)."""
        n, k = in_scope_shape([ex.intent for ex in train], self.oos_label)
        if not (self.label_name_utterances or (self.label_name_utterances is None and is_few_shot(n, k))):
            return []
        names = label_name_examples(train, self.oos_label)
        why = (
            "--data.label_name_utterances true"
            if self.label_name_utterances
            else f"a few-shot training set, {n / k:.1f} utterances per intent; "
            "--data.label_name_utterances false adds none"
        )
        rank_zero_print(
            f"train: {len(names)} intent names added as utterances, {len(train) + len(names)} in all ({why})"
        )
        return names

    def training_shape(self) -> tuple[int, int] | None:
        """(utterances, intents) of the training files, out-of-scope ones left out (None before ``setup``):
        what every few-shot rule of ``fit`` counts (:func:`chatft.core.pairs.is_few_shot`: the encoder advice,
        the intent pooling, the intent-name utterances, the contrastive stage), so that they agree on a set.
        The intent names added as utterances are not counted: they are not the team's examples."""
        train = self.datasets.get("train")
        if train is None:
            return None
        oos = self.intent_vocab.id(self.oos_label) if self.oos_label in self.intent_labels else None
        n, k = in_scope_shape(train.intents, oos)
        return n - len(self._label_names or []), k

    def _warn_truncated(self, split: str, truncated: int, total: int) -> None:
        if truncated:
            log.warning(
                "%s: %d of %d utterances longer than max_length=%d were truncated; their cut words "
                "are predicted O and still scored",
                split,
                truncated,
                total,
                self.max_length,
            )

    def _setup_predict(self) -> None:
        """Predict inputs: the lines of ``predict_file`` (else the test split's words), tokenized once."""
        if "predict" in self.datasets:
            return
        if self.predict_file is not None:
            self.predict_inputs = [(t, split_words(t)) for t in read_utterances(self.predict_file)]
        else:
            self.predict_inputs = [join_words(ex.words) for ex in self._read("test")]
        n = len(self.predict_inputs)
        words = [[w for w, _, _ in spans] for _, spans in self.predict_inputs]
        features = tokenize_examples(self.tokenizer, words, self.max_length)
        truncated = sum(f.truncated for f in features)
        if truncated:
            log.warning(
                "predict: %d of %d utterances longer than max_length=%d were truncated (flagged in the output)",
                truncated,
                n,
                self.max_length,
            )
        self.datasets["predict"] = ListDataset(features)

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def _on_gpu(self) -> bool:
        """Pinned host memory only helps copies to a GPU."""
        trainer = self.trainer
        return trainer is not None and trainer.strategy.root_device.type == "cuda"

    def _lengths(self, split: str) -> list[int]:
        return self.datasets[split].lengths

    def _loader(self, split: str, batch_sampler, loader_class: type[DataLoader] = DataLoader) -> DataLoader:
        return loader_class(
            self.datasets[split],
            batch_sampler=batch_sampler,
            collate_fn=Collator(self.tokenizer.pad_token_id or 0, self.pad_to_multiple_of),
            num_workers=self.num_workers,
            pin_memory=self._on_gpu(),
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        world, rank = self._world()
        sampler = BucketBatchSampler(
            self._lengths("train"),
            self.batch_size,
            shuffle=True,
            bucket=self.bucket_by_length,
            seed=self.seed,
            pool_batches=self.bucket_pool_batches,
            num_replicas=world,
            rank=rank,
        )
        # Resumable: a run resumed mid-epoch skips the batches it already trained (see chatft.training.resume).
        resumable = ResumableBatchSampler(sampler, lambda: epoch_progress(self.trainer))
        if self._resume_state:
            resumable.load_state_dict(self._resume_state)
            self._resume_state = None
        self._train_sampler = resumable
        return self._loader("train", resumable, ResumableDataLoader)

    def state_dict(self) -> dict:
        """Saved in checkpoints: where training stands in the current epoch's batch order."""
        return {"train_sampler": self._train_sampler.state_dict()} if self._train_sampler else {}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restored before the training loader is built, so its first pass skips the trained batches.

        (The loader's own ``state_dict`` is also saved, but Lightning restores loader states only when it
        builds the loader after restoring, and ``estimated_stepping_batches`` builds it before.)
        """
        self._resume_state = state_dict.get("train_sampler")

    def _eval_loader(self, split: str) -> DataLoader:
        world, rank = self._world()
        lengths = self._lengths(split)
        if len(lengths) < world:
            # Each process evaluates its own unpadded shard; an empty one would stop DDP with a traceback.
            raise ConfigError(
                f"{split}: {len(lengths)} utterance(s) for {world} processes; each process needs at least one "
                "(evaluate with fewer devices, e.g. --trainer.devices 1)"
            )
        sampler = EvalBatchSampler(lengths, self.eval_batch_size, num_replicas=world, rank=rank)
        return self._loader(split, sampler)

    def val_dataloader(self) -> DataLoader | list:
        return self._eval_loader("dev") if "dev" in self.datasets else []

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._eval_loader("predict")
