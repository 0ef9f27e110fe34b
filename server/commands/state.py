"""The commands on the station's database file: backup (while it runs) and restore."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from server.exit_codes import EXIT_BAD_INPUT, EXIT_OK


def _size(n: int) -> str:
    """A file size for people: 1.5 MiB (1572864 bytes)."""
    if n < 1024:
        return f"{n} bytes"
    value, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit} ({n} bytes)"


def take_backup(args: argparse.Namespace) -> int:
    from controller.backup import BackupError, backup
    from controller.storage import DATABASE_FILENAME

    try:
        info = backup(Path(args.state) / DATABASE_FILENAME, Path(args.file), force=args.force)
    except BackupError as exc:
        print(f"charge-station: backup: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(
        f"wrote {info.path}: {_size(info.size_bytes)}, schema version {info.schema_version}, "
        f"{info.bills} bills"
    )
    return EXIT_OK


def restore_backup(args: argparse.Namespace) -> int:
    from controller.backup import BackupError, restore
    from controller.storage import DATABASE_FILENAME

    database = Path(args.state) / DATABASE_FILENAME
    try:
        done = restore(database, Path(args.file), keep_queue=args.keep_queue)
    except BackupError as exc:
        print(f"charge-station: restore: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    info = done.info
    print(
        f"restored {info.path} into {database}: schema version {info.schema_version}, "
        f"{info.bills} bills"
    )
    if done.kept is not None:
        print(f"the replaced database is kept as {done.kept}")
    if done.queue_dropped is not None:
        saved = done.queue_dropped.strftime("%Y-%m-%d %H:%M UTC")
        print(
            f"the queue saved at {saved} was left out (its cars have gone); "
            "--keep-queue restores it too"
        )
    return EXIT_OK
