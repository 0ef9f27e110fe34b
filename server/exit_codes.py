"""The exit statuses of `charge-station`'s commands."""

from __future__ import annotations

EXIT_OK = 0
EXIT_BAD_INPUT = 2  # a bad argument, configuration or file: said on standard error
