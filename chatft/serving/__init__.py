"""Inference: the PyTorch and onnxruntime predictors, ONNX export and predict's JSON Lines writer."""
