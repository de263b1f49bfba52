"""The generic out-of-scope utterances shipped with chatft (``chatft/resources/oos_pool``).

200 utterances that fit no assistant's intents: CLINC150's ``oos_train`` and ``oos_val`` (CC BY 3.0, attribution
in the folder's README). Two uses, both opt-in: ``fit --oos.pool true`` chooses the fallback's score and
threshold against them, and ``data convert --oos-pool`` adds them to the training split as the intent
:data:`POOL_INTENT` so the model learns an out-of-scope class a small bot's data does not have. Torch-free:
``data convert`` reads them as well as training.
"""

from __future__ import annotations

from importlib.resources import files

#: The intent the pool is trained as: ``fit``'s default ``--data.oos_label``, CLINC150's name.
POOL_INTENT = "oos"


def pool_utterances() -> list[str]:
    """The shipped generic out-of-scope utterances (``chatft/resources/oos_pool/utterances.txt``), in order."""
    text = files("chatft").joinpath("resources/oos_pool/utterances.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]
