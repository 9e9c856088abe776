"""Output paths checked before the work that fills them."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from producer.errors import InvalidOption

__all__ = ["check_writable"]


def check_writable(path: Path, option: str) -> None:
    """Refuse, before any work, an output path that cannot be written (the work would
    be done and its result lost): a folder, or a place no file can be made. Missing
    folders are made, as writing would make them."""
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "Is a directory")
        if path.parent.exists() and not path.parent.is_dir():
            raise NotADirectoryError(20, "Not a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InvalidOption(option, f"cannot write: {exc.strerror or exc}", path) from exc
