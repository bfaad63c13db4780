"""Names are data, never paths: the one check every name passes before it becomes part of a file name.

Suite names, method labels, cell ids and commit shas end up in file names under the results
dir. ``check_name`` refuses anything but a short run of letters, digits and ``._+-`` that
does not start with a dot (so no ``..``, ``/``, absolute or hidden names), and
``checked_child`` resolves the final path and checks it still lies under its folder: a
second line of defence should a name ever slip past the first.
Usage: ``check_name(label, "methods.<label>")``; ``path = checked_child(root, suite, f"{cell_id}.json")``.
"""

from __future__ import annotations

import re
from pathlib import Path

from zobench.api import UserError

MAX_NAME = 100
MAX_FILE_NAME = 255  # bytes, the limit of ext4, xfs, btrfs and tmpfs
# what atomic_write_text adds around a file name for its temporary file: "." + name + ".XXXXXXXX.tmp"
TEMP_OVERHEAD = len("..12345678.tmp")
SAFE_NAME = re.compile(r"[A-Za-z0-9_+\-][A-Za-z0-9._+\-]{0,%d}" % (MAX_NAME - 1))
SAFE_STEM = re.compile(r"[A-Za-z0-9_+\-][A-Za-z0-9._+\-]*")
SHA = re.compile(r"[0-9a-fA-F]{4,64}")


def shorten(value: object, limit: int = 80) -> str:
    """A value for an error message, never longer than ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_name(value: object, setting: str) -> str:
    """``value`` if it is a safe file-name component, else a UserError naming ``setting``."""
    if not isinstance(value, str) or not SAFE_NAME.fullmatch(value):
        raise UserError(f"{setting}: {shorten(value)} is not a valid name (1-{MAX_NAME} characters of letters, "
                        "digits and ._+-, not starting with '.')")
    return value


def check_file_stem(value: str, suffix: str, setting: str) -> str:
    """A whole file name built from names (a cell id): safe characters, and short enough that
    ``value + suffix`` and its temporary file fit the file system's name limit."""
    if not SAFE_STEM.fullmatch(value):
        raise UserError(f"{setting}: {shorten(value)} is not a valid file name (letters, digits and ._+-, "
                        "not starting with '.')")
    if len((value + suffix).encode()) + TEMP_OVERHEAD > MAX_FILE_NAME:
        raise UserError(f"{setting}: {shorten(value)} is too long for a file name "
                        f"({len(value)} characters; at most {MAX_FILE_NAME - TEMP_OVERHEAD - len(suffix)})")
    return value


def check_sha(value: str, setting: str = "--commit") -> str:
    if not SHA.fullmatch(value or ""):
        raise UserError(f"{setting}: {shorten(value)} is not a hex commit sha (4-64 hex digits)")
    return value


def checked_child(base: Path, *parts: str) -> Path:
    """``base/parts...``, resolved, after checking that it lies under ``base``."""
    root = Path(base).resolve()
    path = root.joinpath(*parts).resolve()
    if path == root or root not in path.parents:
        raise UserError(f"refusing to write outside {root}: {shorten('/'.join(parts))}")
    return path
