"""A new file appears complete or not at all.

``publish_new(path, build)`` has ``build`` write the whole file under a hidden temporary
name beside ``path`` (``.NAME.creating-PID-RANDOM``, made with ``O_EXCL``: never a file or
symlink someone planted there), then gives it its name with ``link`` - atomic, and it never
replaces a file another process published first - and removes the temporary name. A
reader that opens ``path`` meanwhile finds either no file or a complete one; a creator
killed half-way leaves no file at ``path`` (at most its hidden temporary file, which a
later creation of ``path`` removes once no creator holds it locked: ``remove_stale``).
Only a SQLite file is published (``build`` wrote into the temporary file).

The temporary name always fits where ``path``'s name fits: for a name too long to take the
suffix, ``NAME`` is its head and a digest of the whole name (``temp_tag``). Every file
system error is reported as one ``StoreError`` naming ``path``, what failed and what to do
(``creation_error``); a failed creation leaves no temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ..env import MFSTORE_DB
from ..exception import StoreError, StoreFullError, StoreReadOnlyError, disk_full, is_no_room

#: ``link`` errors that mean "this file system has no hard links", not "this failed".
NO_LINKS = frozenset(
    {
        errno.EPERM,
        errno.ENOTSUP,
        errno.EOPNOTSUPP,
        errno.EXDEV,
        errno.ENOSYS,
        errno.EMLINK,
    }
)
#: A temporary file nobody holds locked is a killed creator's once it is this old (the
#: moment between its creation and its creator's lock); the next creation removes it.
UNLOCKED_STALE_SECONDS = 10.0
#: Where file locks are not supported: a temporary file unwritten this long is a killed
#: creator's (a creation writes continuously).
STALE_SECONDS = 600.0
#: What every SQLite database file starts with: only such a file is published.
SQLITE_HEADER = b"SQLite format 3\x00"
#: Longest file name (bytes) where the file system does not say (``pathconf``).
NAME_MAX = 255
#: Suffixes SQLite may leave beside a file it wrote.
SIDECARS = ("-journal", "-wal", "-shm")
#: What a temporary name adds to its tag, with the longest sidecar SQLite puts beside
#: it: ``.`` + ``.creating-`` + a process id (10 digits at most) + ``-`` + 8 hex digits.
TEMP_EXTRA = 1 + len(".creating-") + 10 + 1 + 8 + max(map(len, SIDECARS))
#: Hex digits of the digest of a name too long to be its own tag.
DIGEST_HEX = 16


def longest_name(path: Path) -> int:
    """The longest file name (bytes) in ``path``'s directory."""
    with contextlib.suppress(OSError, ValueError):
        return os.pathconf(path.parent if str(path.parent) else ".", "PC_NAME_MAX")
    return NAME_MAX


def temp_tag(path: Path) -> str:
    """What the temporary names of ``path`` start with, after the dot: its name when
    a temporary name and its sidecars fit with it (always, but within ``TEMP_EXTRA``
    bytes of the file system's longest name), else the head of the name that fits,
    ``~`` and a digest of the whole name (another name shares the tag only with the
    same digest)."""
    name = os.fsencode(path.name)
    name_max = longest_name(path)
    if len(name) + TEMP_EXTRA <= name_max:
        return path.name
    digest = hashlib.sha256(name).hexdigest()[:DIGEST_HEX]
    room = max(0, name_max - TEMP_EXTRA - 1 - DIGEST_HEX)
    head = path.name
    while len(os.fsencode(head)) > room:  # whole characters: a cut one is not a name
        head = head[:-1]
    return f"{head}~{digest}"


def temp_pattern(path: Path) -> re.Pattern[str]:
    """Exactly the names ``temp_name`` gives ``path``'s temporary files (not their
    sidecars, not another file's temporary names)."""
    return re.compile(rf"\.{re.escape(temp_tag(path))}\.creating-[0-9]+-[0-9a-f]{{8}}")


def temp_name(path: Path) -> Path:
    """The hidden temporary name of a new ``path`` (it matches no ``*.mfdb`` glob)."""
    return path.with_name(f".{temp_tag(path)}.creating-{os.getpid()}-{secrets.token_hex(4)}")


#: What a creation error advises by default (a new file of ``Store(path, create=True)``).
ELSEWHERE = f"choose another place (set {MFSTORE_DB} or pass --mfdb)"


def publish_new(
    path: Path,
    build: Callable[[Path], None],
    *,
    or_replace: bool = False,
    elsewhere: str = ELSEWHERE,
) -> bool | None:
    """Create ``path`` complete: ``build(tmp)`` fills an empty file that exists at
    ``tmp``, then it is published atomically at ``path``, never over another file. True:
    this file is at ``path``. False: another process's file was published there first
    (this one is dropped: check that one as any existing file). None: this file system
    can publish nothing atomically (no hard links, no exclusive rename); nothing was
    made, the caller creates the file in place - or, with ``or_replace``, the file is
    renamed to ``path`` unless a file is there (checked just before: not atomic).

    An ``OSError`` of the creation itself (no room, a read-only or missing directory, a
    name too long ...), or no room while ``build`` writes, raises ``creation_error``'s
    one-line error (``elsewhere``: where else to write, in its advice); any other error
    of ``build`` is raised as it is. Nothing is left beside ``path``."""
    longest = longest_name(path) - len("-wal")
    if len(os.fsencode(path.name)) > longest:
        # The file would be made, and then never open: SQLite needs NAME-wal beside it.
        why = f"File name too long (at most {longest} bytes: NAME-wal must fit)"
        raise creation_error(path, OSError(errno.ENAMETOOLONG, why), elsewhere)
    remove_stale(path)
    tmp = temp_name(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(tmp, flags, 0o644)
    except OSError as exc:
        raise creation_error(path, exc, elsewhere) from exc
    # Held until the end: another creation of ``path`` sees this temporary file is alive
    # (however long the build is quiet) and never removes it.
    with contextlib.suppress(OSError):
        lock(fd, blocking=True)
    try:
        try:
            build(tmp)
        except (OSError, StoreFullError) as exc:
            if not is_no_room(exc):
                raise
            raise creation_error(path, exc, elsewhere) from exc
        try:
            return _publish(tmp, path, or_replace)
        except OSError as exc:
            raise creation_error(path, exc, elsewhere) from exc
    finally:
        remove_with_sidecars(tmp)
        os.close(fd)


def _publish(tmp: Path, path: Path, or_replace: bool) -> bool | None:
    try:
        with open(tmp, "rb") as fh:
            header = fh.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        raise StoreError(
            f"cannot create {path}: its temporary file {tmp.name} was removed meanwhile (by "
            "another creation of the same file?); nothing was created; try again"
        ) from None
    if header != SQLITE_HEADER:
        raise StoreError(
            f"cannot create {path}: nothing was written into its temporary file; nothing was "
            "created; report this with the command you ran"
        )
    fsync(tmp)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in NO_LINKS:
            raise
        published = rename_noreplace(tmp, path)
        if published is None and or_replace:
            if os.path.lexists(path):
                return False
            os.replace(tmp, path)
            published = True
        if not published:
            return published
    fsync_dir(path.parent)
    return True


def creation_error(path: Path, exc: BaseException, elsewhere: str = ELSEWHERE) -> StoreError:
    """The one-line error of a creation of ``path`` stopped by ``exc`` (an ``OSError``,
    or a full disk): the path, what was wrong, that nothing was made, what to do."""
    what = exc.strerror if isinstance(exc, OSError) and exc.strerror else None
    if is_no_room(exc):
        kept = f"no file was created ({what or 'no room'}); nothing is left beside it"
        return disk_full(path, kept, f"free some space or {elsewhere}")
    what = what or str(exc)
    code = exc.errno if isinstance(exc, OSError) else None
    directory = path.absolute().parent
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StoreReadOnlyError(
            f"cannot create {path}: {what} (its directory {directory} cannot be written); "
            f"nothing was created; {elsewhere}"
        )
    if code == errno.ENAMETOOLONG:
        todo = "choose a shorter name or path"
    elif code in (errno.ENOENT, errno.ENOTDIR):
        todo = f"check that {directory} is a directory, or {elsewhere}"
    else:
        todo = f"check {directory}, or {elsewhere}"
    return StoreError(f"cannot create {path}: {what}; nothing was created; {todo}")


def remove_with_sidecars(tmp: Path) -> None:
    for p in (tmp, *(Path(f"{tmp}{s}") for s in SIDECARS)):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def remove_stale(path: Path) -> None:
    """Remove the temporary files of killed creations of ``path``: one its creator no
    longer holds locked (``UNLOCKED_STALE_SECONDS`` after it was last written, the moment
    between its creation and its lock), or - where locks are not supported - one unwritten
    for ``STALE_SECONDS``. The age is that of the last write to the file or its sidecars."""
    ours = temp_pattern(path).fullmatch
    older = legacy_temp_pattern(path).fullmatch
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent if str(path.parent) else "."):
            legacy = older(entry.name) is not None
            if not (legacy or ours(entry.name)):
                continue
            with contextlib.suppress(OSError):
                tmp = Path(entry.path)
                age = time.time() - last_written(tmp)
                if age <= UNLOCKED_STALE_SECONDS:
                    continue
                # (older versions locked nothing: theirs go by age alone)
                held = None if legacy else held_by_creator(tmp)
                if held is False or (held is None and age > STALE_SECONDS):
                    remove_with_sidecars(tmp)


def legacy_temp_pattern(path: Path) -> re.Pattern[str]:
    """The temporary names older versions gave ``path`` (``.NAME.PID.tmp`` of a flow's
    run, ``.NAME.snapshot-PID`` and ``.NAME.export-PID``): a killed one's is removed too."""
    name = re.escape(path.name)
    return re.compile(rf"\.{name}\.(?:[0-9]+\.tmp|(?:snapshot|export)-[0-9]+)")


def lock(fd: int, *, blocking: bool) -> None:
    """An exclusive ``flock`` on ``fd`` (``OSError`` where unsupported or, not blocking,
    held by another)."""
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))


def held_by_creator(tmp: Path) -> bool | None:
    """Whether a live creator holds ``tmp`` locked; None where locks are not supported."""
    try:
        fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        lock(fd, blocking=False)
    except BlockingIOError:
        return True
    except (OSError, ImportError):
        return None
    finally:
        os.close(fd)  # (releases the lock this took)
    return False


def last_written(tmp: Path) -> float:
    """When ``tmp`` or one of its sidecars was last written (a long build may write only
    its -wal for a while); 0 for a file gone meanwhile."""
    times = [0.0]
    for p in (tmp, *(Path(f"{tmp}{s}") for s in SIDECARS)):
        with contextlib.suppress(OSError):
            times.append(os.lstat(p).st_mtime)
    return max(times)


def rename_noreplace(src: Path, dst: Path) -> bool | None:
    """Rename ``src`` to ``dst`` unless ``dst`` exists, atomically (``renameat2`` with
    ``RENAME_NOREPLACE`` on Linux, ``renamex_np`` with ``RENAME_EXCL`` on macOS). True:
    renamed; False: ``dst`` exists; None: not supported here."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    old, new = os.fsencode(src), os.fsencode(dst)
    if sys.platform.startswith("linux") and hasattr(libc, "renameat2"):
        at_fdcwd, rename_noreplace_flag = -100, 1
        result = libc.renameat2(at_fdcwd, old, at_fdcwd, new, rename_noreplace_flag)
    elif sys.platform == "darwin" and hasattr(libc, "renamex_np"):
        rename_excl = 4
        result = libc.renamex_np(old, new, rename_excl)
    else:
        return None
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err == errno.EEXIST:
        return False
    if err in NO_LINKS or err == errno.EINVAL:
        return None
    raise OSError(err, os.strerror(err), str(dst))


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: Path) -> None:
    """Make a new name in ``directory`` durable (where directories can be fsynced)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory if str(directory) else ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
