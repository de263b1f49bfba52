"""ModelSpec: the hyper-parameters that shape a :class:`~chatft.model.joint.JointModel`, and the one way to build it.

Training (:class:`chatft.training.module.IntentSlotModule`), inference and export
(:func:`chatft.model.inference.load_for_inference`) and distillation (the teacher is loaded for inference) all
build the model with :meth:`ModelSpec.build`, from the same ``hyper_parameters`` a checkpoint stores: an
option added to the network is then read back the way it was trained (a mean-pooling model once reloaded
with CLS pooling because two constructors disagreed).

The spec also says what "not calibrated" means (:meth:`ModelSpec.uncalibrated_oos`), for ``test``,
``predict`` and every predictor alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chatft.core.labels import LabelVocab
from chatft.core.oos import OOSState
from chatft.model.encoders import DEFAULT_ENCODER

__all__ = ["ModelSpec"]


@dataclass(frozen=True)
class ModelSpec:
    """What the network looks like (see :class:`~chatft.training.module.IntentSlotModule` for each option).

    ``intent_labels``/``slot_labels`` are normalised as :class:`~chatft.core.labels.LabelVocab` does
    (``<unk>`` first; no slot labels: an intent-only model).
    """

    intent_labels: tuple[str, ...]
    slot_labels: tuple[str, ...] = ()
    encoder: str = DEFAULT_ENCODER
    use_crf: bool = False
    bio_constrained: bool = True
    head_dropout: float = 0.1
    intent_pooling: str = "cls"
    intent_head: str = "linear"
    encoder_dropout: float | None = None
    encoder_layers: int | tuple[int, ...] | None = None
    oos_label: str | None = "oos"
    #: Units added to the tokenizer, in id order (:mod:`chatft.model.vocabulary`); their rows follow the
    #: pretrained ones in the word embeddings.
    added_tokens: tuple[str, ...] | None = None
    added_token_init: str = "mean"

    def __post_init__(self) -> None:
        object.__setattr__(self, "intent_labels", LabelVocab.from_list(self.intent_labels).labels)
        slots = LabelVocab.from_list(self.slot_labels).labels if self.slot_labels else ()
        object.__setattr__(self, "slot_labels", slots)
        object.__setattr__(self, "added_tokens", tuple(self.added_tokens or ()))
        if isinstance(self.encoder_layers, list):
            object.__setattr__(self, "encoder_layers", tuple(self.encoder_layers))

    @classmethod
    def from_hparams(cls, hparams: Mapping) -> ModelSpec:
        """The spec of a module's (or a checkpoint's) ``hyper_parameters``; keys an older checkpoint lacks take
        the defaults the code had before they existed."""
        defaults = cls(intent_labels=("<unk>",))
        get = hparams.get
        return cls(
            intent_labels=tuple(hparams["intent_labels"]),
            slot_labels=tuple(get("slot_labels") or ()),
            encoder=get("encoder", defaults.encoder),
            use_crf=bool(get("use_crf", defaults.use_crf)),
            bio_constrained=bool(get("bio_constrained", defaults.bio_constrained)),
            head_dropout=float(get("head_dropout", defaults.head_dropout)),
            # None: a module whose fit has not chosen yet (``--model.intent_pooling null``): [CLS] until it does.
            intent_pooling=get("intent_pooling") or defaults.intent_pooling,
            intent_head=get("intent_head", defaults.intent_head),
            encoder_dropout=get("encoder_dropout", defaults.encoder_dropout),
            encoder_layers=get("encoder_layers", defaults.encoder_layers),
            oos_label=get("oos_label", defaults.oos_label),
            added_tokens=tuple(get("added_tokens") or ()),
            added_token_init=get("added_token_init", defaults.added_token_init),
        )

    @property
    def oos_index(self) -> int | None:
        """The id of the out-of-scope intent, when ``oos_label`` is one of the intents."""
        if not self.oos_label or self.oos_label not in self.intent_labels:
            return None
        return self.intent_labels.index(self.oos_label)

    def uncalibrated_oos(self) -> OOSState:
        """The out-of-scope decision before (or without) calibration: temperature 1, no threshold, and, when
        the model has an out-of-scope intent, out of scope when that intent wins the argmax.

        ``test``/``predict`` (before calibration or with a checkpoint that has none) and the predictors of
        such a checkpoint decode with this same state, so they call the same utterances out of scope.
        """
        index = self.oos_index
        return OOSState(mode="both" if index is not None else "threshold", oos_index=index)

    def backbone(self, pretrained: bool = True):
        """The encoder: ``pretrained`` weights (or the same architecture randomly initialised), with the
        spec's dropout, a word-embedding row for each of ``added_tokens`` and only the ``encoder_layers`` it
        keeps."""
        from chatft.model.encoders import keep_layers, load_encoder

        encoder = load_encoder(self.encoder, pretrained=pretrained, dropout=self.encoder_dropout)
        if self.added_tokens:
            from chatft.model.encoders import load_tokenizer
            from chatft.model.vocabulary import extend_tokenizer, grow_embeddings, unit_ids

            tokenizer = extend_tokenizer(load_tokenizer(self.encoder), self.added_tokens)
            ids = unit_ids(tokenizer, self.added_tokens)
            grow_embeddings(encoder, ids, self.added_token_init, tokenizer.unk_token_id)
        if self.encoder_layers is not None:
            layers = self.encoder_layers
            keep_layers(encoder, list(layers) if isinstance(layers, tuple) else layers)
        return encoder

    def build(self, encoder=None, pretrained: bool = True):
        """The :class:`~chatft.model.joint.JointModel` of this spec around ``encoder`` (default:
        :meth:`backbone` with ``pretrained``). Modules are created encoder first, then the heads, so a seed
        gives the same weights as it always did."""
        from chatft.model.joint import JointModel

        if encoder is None:
            encoder = self.backbone(pretrained)
        return JointModel(
            encoder,
            num_intents=len(self.intent_labels),
            slot_tags=list(self.slot_labels),
            use_crf=self.use_crf,
            bio_constrained=self.bio_constrained,
            head_dropout=self.head_dropout,
            intent_pooling=self.intent_pooling,
            intent_head=self.intent_head,
        )
