"""What can go wrong talking to a device, split by what the controller should do about it."""

from __future__ import annotations


class DriverError(Exception):
    """A device could not be read or commanded. The message names the device."""


class RetryableError(DriverError):
    """Worth trying again: the link may come back (RULES §4 decides when it is a fault)."""


class LinkTimeout(RetryableError):
    """The device did not answer in time."""


class LinkDown(RetryableError):
    """The link (TCP connection, serial port) is not up."""


class BadResponse(RetryableError):
    """An answer that does not fit the question (unit, function or length): a corrupted exchange."""


class PermanentError(DriverError):
    """Trying again will not help."""


class DeviceRefused(PermanentError):
    """The device answered with a Modbus exception."""

    def __init__(self, message: str, exception_code: int) -> None:
        super().__init__(message)
        self.exception_code = exception_code


class NotSupported(PermanentError):
    """The device has no such capability (an energy limit, a watchdog)."""


class BadReading(DriverError):
    """A meter value that must not be used as energy: `kind` is one of backwards, jump, reset,
    garbage. The last good value stays the baseline."""

    def __init__(self, message: str, kind: str, value_wh: float | None) -> None:
        super().__init__(message)
        self.kind = kind
        self.value_wh = value_wh
