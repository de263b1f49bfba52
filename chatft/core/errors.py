"""Exceptions a user can cause (bad data, bad config, missing model): the CLI reports them as one line.

Torch-free on purpose: the ONNX predictor, the dialogue code and the data tools raise these too, and the
CLI must be able to catch them without importing the training stack.
"""


class ConfigError(ValueError):
    """A configuration value that cannot work; the message says which option and how to fix it."""


class DataFormatError(ValueError):
    """Bad input data; the message names the file and line."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, unreadable, not chatft's, or trained on other labels."""


class EncoderNotFoundError(ValueError):
    """The encoder could not be found or loaded; the message says how to point at a local folder."""


class EncoderInstallError(ValueError):
    """Installing an encoder failed: no network to the index, a hash mismatch, a truncated part, no disk space."""


USER_ERRORS: tuple[type[Exception], ...] = (
    CheckpointError,
    DataFormatError,
    EncoderNotFoundError,
    EncoderInstallError,
    ConfigError,
    FileNotFoundError,
)
