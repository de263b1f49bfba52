"""chatft: joint intent detection and slot filling by fine-tuning BERT-family encoders."""

__version__ = "0.1.0"
