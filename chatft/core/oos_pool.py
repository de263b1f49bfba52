"""The generic out-of-scope utterances shipped with chatft (``chatft/resources/oos_pool``).

200 utterances that fit no assistant's intents: CLINC150's ``oos_train`` and ``oos_val`` (CC BY 3.0, attribution
in the folder's README). Two uses, both opt-in: ``fit --oos.pool true`` chooses the fallback's score and
threshold against them, and ``data convert --oos-pool`` adds them to the training split as the intent
:data:`POOL_INTENT` so the model learns an out-of-scope class a small bot's data does not have. Torch-free:
``data convert`` reads them as well as training.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.resources import files

from chatft.core.text import split_words

#: The intent the pool is trained as: ``fit``'s default ``--data.oos_label``, CLINC150's name.
POOL_INTENT = "oos"


def pool_utterances() -> list[str]:
    """The shipped generic out-of-scope utterances (``chatft/resources/oos_pool/utterances.txt``), in order."""
    text = files("chatft").joinpath("resources/oos_pool/utterances.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def pool_words(utterances: Iterable[str] | None = None) -> list[list[str]]:
    """The words of each utterance (default: the shipped pool) as the predictors split a text
    (:func:`chatft.core.text.split_words`: punctuation apart, one word per character of an unspaced script
    such as Chinese). ``str.split`` read "我想订机票" as one word and "meat," with its comma: calibration then
    scored texts no served request ever looks like."""
    texts = pool_utterances() if utterances is None else utterances
    return [[word for word, _, _ in split_words(text)] for text in texts]
