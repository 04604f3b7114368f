"""The gateway raises the shared domain errors (see waybill_shared.errors)."""

from waybill_shared.errors import Conflict, Gone, Invalid, NotFound

__all__ = ["Conflict", "Gone", "Invalid", "NotFound"]
