"""The database's files: their mode when the engine creates them, and whether this user can
write them at all.

Payloads are user data, so a database the engine creates is owner-only unless the caller
asks otherwise; SQLite gives the -wal and -shm files it creates the database file's mode.
A database in a folder or a file this user cannot write (another user's runs, a read-only
mount) is opened read-only: SQLite could not even read it otherwise, since reading a WAL
database needs its -shm file, which it would try to create.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

# Payloads are user data: a database is readable by its owner only, unless asked otherwise.
DEFAULT_FILE_MODE = 0o600


def check_file_mode(file_mode: int) -> None:
    if not isinstance(file_mode, int) or isinstance(file_mode, bool) or file_mode & ~0o666 or file_mode & 0o600 != 0o600:
        shown = oct(file_mode) if isinstance(file_mode, int) and file_mode >= 0 else repr(file_mode)
        raise ValueError(
            f"file_mode {shown} is not a database file mode: give read and write bits only, with the owner's "
            "read and write set, e.g. file_mode=0o600 (the default, owner only) or 0o640 (group may read)."
        )


def create_private(target: str, file_mode: int) -> None:
    """Create an empty database file (SQLite takes it as a new database) with ``file_mode``
    exactly: SQLite would create it with the umask's 0644. An existing file keeps its mode."""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode)
    except OSError:
        return  # it exists (and keeps its mode), or SQLite will say why it cannot be created
    try:
        os.fchmod(fd, file_mode)  # the umask would clear bits the caller asked for
    finally:
        os.close(fd)


def cannot_write(target: str) -> bool:
    """True if ``target`` exists and this user cannot write it: the file is read-only, or its
    folder is and SQLite could not create the -wal and -shm files it writes through."""
    path = Path(target)
    if not path.is_file():
        return False
    if not os.access(path, os.W_OK):
        return True
    real = path.resolve()
    if os.access(real.parent, os.W_OK):
        return False
    return not all(os.access(f"{real}{suffix}", os.W_OK) for suffix in ("-wal", "-shm"))


def has_log(target: str) -> bool:
    """A -wal file with content: committed changes that are not in the database file yet."""
    try:
        return os.path.getsize(f"{Path(target).resolve()}-wal") > 0
    except OSError:
        return False


def read_only_uri(target: str, *, immutable: bool) -> str:
    """An SQLite URI that never writes. ``immutable`` also skips locking and the -shm file,
    for a folder where that file cannot be created; only safe when no -wal holds changes."""
    return f"file:{quote(str(Path(target).resolve()))}?{'immutable=1' if immutable else 'mode=ro'}"


def read_only_message(target: str) -> str:
    return (
        f"The database {target!r} is read-only for this user (the file or its folder is not writable): "
        "it can be read (list, show, describe, result, history), not changed. Ask its owner, or work on a copy."
    )
