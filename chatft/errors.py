"""Exceptions a user can cause (bad data, bad config, missing model): the CLI reports them as one line."""

from chatft.checkpoint import CheckpointError
from chatft.encoders import EncoderNotFoundError
from chatft.formats import DataFormatError


class ConfigError(ValueError):
    """A configuration value that cannot work; the message says which option and how to fix it."""


USER_ERRORS: tuple[type[Exception], ...] = (
    CheckpointError,
    DataFormatError,
    EncoderNotFoundError,
    ConfigError,
    FileNotFoundError,
)
