"""Bring your own data: ``convert`` other formats to chatft's JSON Lines, ``stats`` and ``check`` a dataset.

Torch-free (tests/test_boundary.py checks it): conversion and checks run where training does not.
One module per input format (``rasa_yaml``, ``rasa_json``, ``brackets``, ``spans_jsonl``, ``csv_table``,
``clinc``), each returning :class:`~chatft.data_tools.records.Record` objects; ``records`` turns character
spans into word BIO tags with :func:`chatft.core.text.split_words`, the splitter ``predict`` uses.
"""
