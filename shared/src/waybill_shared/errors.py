"""Domain errors any service may raise; the gateway maps them to HTTP answers and
the consumers to a failed task with the message."""

import asyncpg
from sqlalchemy.exc import DBAPIError


class NotFound(Exception):
    """Unknown, or not the caller's (the same answer, so nothing leaks): 404."""


class Invalid(Exception):
    """Well-formed but impossible as asked: 422."""


class Conflict(Exception):
    """The object is not in a state that allows this: 409."""


class Gone(Exception):
    """It existed, and its bytes are no longer in storage: 410."""


def is_unavailable(exc: BaseException) -> bool:
    """A backing service that is away (connection refused or lost, a server shutting
    down or full): worth retrying later, unlike an error in the request itself."""
    if isinstance(exc, DBAPIError):  # SQLAlchemy's wrapper of the driver's error
        cause = exc.orig.__cause__ if exc.orig is not None else None
        return exc.connection_invalidated or (cause is not None and is_unavailable(cause))
    return isinstance(
        exc,
        OSError
        | asyncpg.PostgresConnectionError
        | asyncpg.InterfaceError
        | asyncpg.CannotConnectNowError
        | asyncpg.TooManyConnectionsError
        | asyncpg.AdminShutdownError,
    )
