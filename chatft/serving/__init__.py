"""Inference: the PyTorch and onnxruntime predictors, ONNX export, predict's JSON Lines writer, the HTTP server and the ``chat`` command."""
