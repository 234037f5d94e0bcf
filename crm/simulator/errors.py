"""The fault every simulated operation raises for NetServer to answer with."""

from __future__ import annotations


class SimFault(Exception):
    def __init__(self, message: str, *, exception_type: str, code: str = "Client") -> None:
        super().__init__(message)
        self.message = message
        self.exception_type = exception_type
        self.code = code
