"""What a conversion can end with besides success, and the signal to start over."""


class ConversionError(Exception):
    """The file cannot be converted (not tabular, corrupt, too wide for Excel...).
    The message is for the user."""


class ConversionCancelled(Exception):
    """should_stop() said stop: the partial output is to be discarded."""


class Restart(Exception):
    """A reader widened a column after batches were emitted: convert again from the
    start (the reader keeps the wider types)."""
