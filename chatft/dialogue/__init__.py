"""Dialogue state tracking over predictions and the record of each turn (torch-free; the ``chat`` command that runs them on a model is :mod:`chatft.serving.chat`)."""
