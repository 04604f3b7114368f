"""Exit codes and the one error type every command raises: main() turns it into one
line on stderr and its exit code."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    # The task failed or was cancelled, or the API refused the operation (not found,
    # conflict such as cancelling a finished export).
    FAILED = 1
    # Bad arguments, or a request the API rejected as invalid (400, 422).
    USAGE = 2
    # The gateway could not be reached, or could not serve now (5xx, 429): try again later.
    UNAVAILABLE = 3
    # No API key, or the key was refused (401, 403): run `waybill login`.
    AUTH = 4
    INTERRUPTED = 130


class CliError(Exception):
    def __init__(self, message: str, code: ExitCode = ExitCode.FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def usage_error(message: str) -> CliError:
    return CliError(message, ExitCode.USAGE)
