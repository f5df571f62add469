"""Errors the client raises, each with a message an artist can act on (standard library only)."""
from __future__ import annotations

from ..core.errors import ImageTooLargeError, UpliftError  # noqa: F401  (re-exported)


class ServiceError(UpliftError):
    """Base of every failure talking to an Uplift server."""


class ServerUnreachableError(ServiceError):
    """Nothing listens at the URL (connection refused, unknown host, connect timeout)."""


class NotUpliftServerError(ServiceError):
    """Something answers at the URL, but it is not an Uplift server (or speaks another API version)."""


class AuthenticationError(ServiceError):
    """The server needs a token and ours is missing or wrong."""


class BackendNotLoadedError(ServiceError):
    """The server runs, but without the backend this request needs."""


class ServerBusyError(ServiceError):
    """The server's queue stayed full through every retry."""


class ServerFailedError(ServiceError):
    """The server (or its backend) failed while handling a valid request."""


class BadRequestError(ServiceError):
    """The server refused our input (not an image, mask size mismatch, empty mask, …)."""


class RequestTimeoutError(ServiceError):
    """The request did not finish within the client's or the server's time limit."""


class RemoteServerNotAllowedError(ServiceError):
    """The URL points off this machine but only loopback servers are allowed."""


# -- raised on the serving side (in-process services and the server) -------------------

class InvalidRequestError(UpliftError):
    """A request parameter out of range: no prompt, a point or box outside the image,
    a missing prompt for a backend that needs one, an unknown inpaint mode, …"""


class BackendOutOfMemoryError(UpliftError):
    """A backend ran out of (GPU) memory; the service stays up and frees what it can."""
