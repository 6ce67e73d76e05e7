"""The one exception type users see: a clear, one-line message that says what is wrong and how to fix it."""


class TinyMaskGITError(Exception):
    """Bad input or configuration; entry points print it as a single line and exit with status 2."""


class ConfigError(TinyMaskGITError):
    """A config value is invalid; the message names the key."""


class DataError(TinyMaskGITError):
    """A dataset is missing, incomplete or holds a bad file; the message names the path."""


class CheckpointError(TinyMaskGITError):
    """A checkpoint is missing, unreadable or does not fit the run."""
