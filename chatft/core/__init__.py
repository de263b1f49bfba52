"""chatft's torch-free core: tags, formats, text, labels, features, prediction types, numpy decoding, errors.

Nothing under ``chatft.core`` imports torch, Lightning or transformers (``tests/test_boundary.py`` imports each
module in a fresh interpreter and checks), so the ONNX predictor, the dialogue code, data conversion and the
HTTP server run on a machine that has none of them.
"""
