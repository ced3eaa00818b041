"""Domain errors with a stable ``error_id``, shared by the CLI and the REST API."""

from __future__ import annotations

from typing import Any


class VaxlaError(Exception):
    """A request Växla refuses; ``error_id`` is stable and documented."""

    status = 400
    error_id = "bad-request"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(VaxlaError):
    status = 404
    error_id = "not-found"


class Conflict(VaxlaError):
    status = 409
    error_id = "conflict"


class InvalidInput(VaxlaError):
    status = 422
    error_id = "invalid-input"


class ExtensionNotFound(NotFound):
    error_id = "extension-not-found"


class ExtensionExists(Conflict):
    error_id = "extension-exists"


class InvalidExtension(InvalidInput):
    error_id = "invalid-extension"
