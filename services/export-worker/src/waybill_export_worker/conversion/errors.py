"""What a conversion can end with besides success."""


class ConversionError(Exception):
    """The file cannot be converted (not tabular, corrupt, too wide for Excel...).
    The message is for the user."""


class ConversionCancelled(Exception):
    """should_stop() said stop: the partial output is to be discarded."""
