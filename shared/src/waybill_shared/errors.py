"""Domain errors any service may raise; the gateway maps them to HTTP answers and
the consumers to a failed task with the message."""


class NotFound(Exception):
    """Unknown, or not the caller's (the same answer, so nothing leaks): 404."""


class Invalid(Exception):
    """Well-formed but impossible as asked: 422."""


class Conflict(Exception):
    """The object is not in a state that allows this: 409."""


class Gone(Exception):
    """It existed, and its bytes are no longer in storage: 410."""
