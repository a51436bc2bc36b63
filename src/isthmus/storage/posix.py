"""The POSIX connector: a directory tree on a local filesystem, confined to its root.

Threat model. The clients of a connector are remote users who choose every path string, and
local users who can create files and symlinks inside the root (through Isthmus, or directly
on a shared filesystem) and may race renames against us. Neither may make the server read,
write, list or learn the contents of anything outside the root. What we defend against:

- ``..`` and absolute paths: client paths are canonicalised lexically (`paths.split`) before
  they reach the filesystem; a ``..`` that would climb above the root is refused.
- symlinks: we never let the kernel follow a link we have not looked at. Paths are walked one
  component at a time from a file descriptor of the root with ``openat(..., O_NOFOLLOW)``
  (``O_PATH`` directories, so only search permission is needed); when a component is a
  symlink we read it and resolve its text ourselves against the part of the root walked so
  far. A target that leads outside the root (absolute or via ``..``) is refused with
  PathEscape; one inside is walked the same way. Because every step is relative to a
  descriptor we already hold and never follows a link, swapping a directory for a symlink
  mid-walk makes the walk fail, never escape.
- the final component: operations act on it with ``*at()`` calls relative to its parent's
  descriptor and without following links (``unlinkat`` removes a link, never its target;
  reads open with ``O_NOFOLLOW`` after the walk resolved links; ``O_NONBLOCK`` so a FIFO
  cannot hang a reader, and anything but a regular file is refused for reading).
- partial writes: files are written under a reserved temporary name (hidden from listings)
  in the destination directory, fsynced, checked, and renamed into place in one step.
- host paths: errors carry collection paths only; OSError text (which names host paths) is
  never passed on.

Not defended here: what the local account may do (that is the kernel's job: a mapped account
is enforced by doing the I/O in a process running as that account, see `posix_worker`), and
hard links made by a local user to files outside the root (a hard link *is* a file inside the
root; filesystems with ``protected_hardlinks`` stop users linking files they cannot read).
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import re
import secrets
import stat
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from types import TracebackType

from isthmus.storage.accounts import LocalAccount, group_name, user_name
from isthmus.storage.connector import (
    AtomicWriter,
    CommitOutcome,
    Connector,
    Entry,
    EntryType,
    ReadStream,
    WriteOptions,
    check_range,
)
from isthmus.storage.digests import BackgroundDigest, Chunk, MultiDigest
from isthmus.storage.errors import (
    AccountNotPermitted,
    AlreadyExists,
    InvalidArgument,
    InvalidPath,
    IsADirectory,
    NotADirectory,
    NotFound,
    NotSupported,
    PathEscape,
    PermissionDenied,
    StorageError,
)
from isthmus.storage.paths import ROOT, join_parts, normalize, parent_and_name, split
from isthmus.storage.posix_syscalls import (
    CREATE_FLAGS,
    LIST_FLAGS,
    O_PATH,
    READ_FLAGS,
    WALK_FLAGS,
    fsync_directory,
    open_beneath,
    remove_tree,
    rename_noreplace,
    start_writeback,
    storage_error,
    sync_filesystem,
)

# Temporary files of writes in progress; reserved, and hidden from listings.
TEMP_PREFIX = ".isthmus-part-"
MAX_SYMLINK_HOPS = 40  # as Linux's MAXSYMLINKS
# A file being written is handed to the disk in steps of this many bytes as it arrives.
WRITEBACK_STEP = 8 * 1024 * 1024
REREAD_STEP = 1024 * 1024
# Names of temporary files that a later write may find again (`WriteOptions.resume_key`).
RESUME_KEY = re.compile(r"[A-Za-z0-9-]{1,64}")
IOV_MAX = os.sysconf("SC_IOV_MAX") if "SC_IOV_MAX" in os.sysconf_names else 16


def open_posix_connector(
    root: str | os.PathLike[str], account: LocalAccount | None = None
) -> Connector:
    """A POSIX connector over ``root`` doing its I/O as ``account`` (the server's own when None).

    As root, another account's I/O happens in a worker process running with that account's
    uid, gid and groups. Otherwise only the server's own account can be used.
    """
    if account is None or account.uid == os.geteuid():
        return PosixConnector(root)
    if os.geteuid() != 0:
        me = LocalAccount.current()
        raise AccountNotPermitted(
            f"The server runs as '{me.name}' (uid {me.uid}), not as root, so it can only access "
            f"storage as '{me.name}'; the identity maps to the local account '{account.name}'. "
            f"Map identities to '{me.name}', or run the server as root."
        )
    from isthmus.storage.posix_worker import WorkerConnector  # the worker imports this module

    return WorkerConnector(root, account)


class _Location:
    """Where a path leads: a directory descriptor and the name in it (None when the path is
    that directory itself), plus the directory's real path inside the root."""

    def __init__(self, fd: int, name: str | None, parts: list[str], path: str) -> None:
        self.fd = fd
        self.name = name
        self.parts = parts
        self.path = path

    @property
    def real_path(self) -> str:
        return join_parts(self.parts + ([self.name] if self.name is not None else []))

    def lstat(self) -> os.stat_result:
        try:
            if self.name is None:
                return os.stat(self.fd)
            return os.stat(self.name, dir_fd=self.fd, follow_symlinks=False)
        except OSError as error:
            raise storage_error(error, self.path) from None

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> _Location:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class PosixConnector(Connector):
    """Files under ``root``, read and written as the account this process runs as."""

    supports_symlinks = True
    holds_many_writers = True

    def __init__(self, root: str | os.PathLike[str]) -> None:
        root_path = os.path.abspath(os.fspath(root))
        try:
            # The root itself may be a symlink: that is the administrator's choice.
            self._root_fd = os.open(
                root_path, (O_PATH or os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC
            )
        except FileNotFoundError:
            raise NotFound("The collection root does not exist", ROOT) from None
        except NotADirectoryError:
            raise NotADirectory("The collection root is not a directory", ROOT) from None
        except PermissionError:
            raise PermissionDenied("The collection root is not accessible", ROOT) from None
        # An O_PATH descriptor opens without any permission on the directory itself; say now,
        # not on every later call, when this account cannot enter the root.
        if not os.access(".", os.X_OK, dir_fd=self._root_fd):
            self.close()
            raise PermissionDenied("The collection root is not accessible", ROOT)
        # Absolute symlink targets are recognised under either spelling of the root.
        self._root_prefixes = tuple(dict.fromkeys([root_path, os.path.realpath(root_path)]))

    def close(self) -> None:
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1

    # --- walking ---------------------------------------------------------------------------

    def _locate(self, path: str, *, follow: bool) -> _Location:
        """Walk to ``path`` without ever letting the kernel follow a symlink (see the module
        docstring). With ``follow``, a final symlink is resolved too. A missing final component
        is not an error here (creators need its parent); a missing parent is."""
        canonical = normalize(path)
        pending = deque(split(canonical))
        parts: list[str] = []
        # Most paths hold no symlink: their parent opens in one call that refuses any (and
        # any escape); only the last component is left to the walk below.
        parent = (open_beneath(self._root_fd, "/".join(list(pending)[:-1]), WALK_FLAGS)
                  if len(pending) > 1 else None)
        if parent is not None:
            fd = parent
            parts = list(pending)[:-1]
            pending = deque([pending[-1]])
        else:
            fd = os.dup(self._root_fd)
        hops = 0
        try:
            while pending:
                name = pending.popleft()
                if name == "..":  # only ever from a symlink's text
                    if not parts:
                        raise PathEscape(
                            f"A symlink in '{canonical}' leads outside the collection", canonical
                        )
                    parts.pop()
                    os.close(fd)
                    fd = -1
                    fd = self._open_parts(parts, canonical)
                    continue
                last = not pending
                if last and not follow:
                    return _Location(fd, name, parts, canonical)
                try:
                    info = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    if last:
                        return _Location(fd, name, parts, canonical)
                    raise NotFound(f"'{canonical}' does not exist", canonical) from None
                if stat.S_ISLNK(info.st_mode):
                    hops += 1
                    if hops > MAX_SYMLINK_HOPS:
                        raise InvalidPath(
                            f"Too many levels of symbolic links in '{canonical}'", canonical
                        )
                    absolute, target = self._link_parts(os.readlink(name, dir_fd=fd), canonical)
                    if absolute:
                        os.close(fd)
                        fd = -1
                        fd = os.dup(self._root_fd)
                        parts = []
                    pending.extendleft(reversed(target))
                    continue
                if last:
                    return _Location(fd, name, parts, canonical)
                if not stat.S_ISDIR(info.st_mode):
                    raise NotADirectory(
                        f"'{join_parts([*parts, name])}' is not a directory", canonical
                    )
                child = os.open(name, WALK_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
                parts.append(name)
            return _Location(fd, None, parts, canonical)
        except OSError as error:
            if fd >= 0:
                os.close(fd)
            raise storage_error(error, canonical) from None
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise

    def _open_parts(self, parts: list[str], canonical: str) -> int:
        """A descriptor for a directory reached by real (symlink-free) components."""
        fd = os.dup(self._root_fd)
        try:
            for name in parts:
                child = os.open(name, WALK_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
        except OSError as error:
            os.close(fd)
            raise storage_error(error, canonical) from None
        return fd

    def _link_parts(self, text: str, canonical: str) -> tuple[bool, list[str]]:
        """A symlink's text as components: (True, from the root) for an absolute target under
        the root, (False, from the link's directory) for a relative one."""
        if text.startswith("/"):
            for prefix in self._root_prefixes:
                if text == prefix or text.startswith(prefix.rstrip("/") + "/"):
                    rest = text[len(prefix) :]
                    return True, [p for p in rest.split("/") if p not in ("", ".")]
            raise PathEscape(f"A symlink in '{canonical}' leads outside the collection", canonical)
        return False, [p for p in text.split("/") if p not in ("", ".")]

    # --- describing ------------------------------------------------------------------------

    def _entry(self, name: str, info: os.stat_result) -> Entry:
        mode = info.st_mode
        if stat.S_ISREG(mode):
            kind = EntryType.FILE
        elif stat.S_ISDIR(mode):
            kind = EntryType.DIR
        elif stat.S_ISLNK(mode):
            kind = EntryType.SYMLINK
        elif stat.S_ISCHR(mode):
            kind = EntryType.CHAR_DEVICE
        elif stat.S_ISBLK(mode):
            kind = EntryType.BLOCK_DEVICE
        elif stat.S_ISFIFO(mode):
            kind = EntryType.PIPE
        else:
            kind = EntryType.OTHER
        return Entry(
            name=name,
            type=kind,
            size=info.st_size,
            mtime=info.st_mtime,
            permissions=stat.S_IMODE(mode),
            user=user_name(info.st_uid),
            group=group_name(info.st_gid),
        )

    def _describe(self, location: _Location, name: str, info: os.stat_result) -> Entry:
        """An entry; for a symlink, with its target when that is inside the root."""
        entry = self._entry(name, info)
        if entry.type is not EntryType.SYMLINK:
            return entry
        try:
            text = os.readlink(location.name or ".", dir_fd=location.fd)
        except OSError:
            return entry
        try:
            with self._locate(location.real_path, follow=True) as target:
                target_info = target.lstat()
                target_path = target.real_path
        except StorageError:
            # Dangling, unreadable, or leading outside the root: nothing about the target is
            # revealed, not even whether it exists.
            return replace(entry, link_target=self._shown_link_text(text))
        return replace(entry, link_target=target_path, target=self._entry(name, target_info))

    def _shown_link_text(self, text: str) -> str | None:
        """What `ls` may say a link that reaches nothing points to: relative text as the link
        stores it; absolute text as a collection path when it is under the root, and nothing
        when it is not (it would name the server's own folders, as the root's real path
        would)."""
        if not text.startswith("/"):
            return text
        try:
            return normalize(join_parts(self._link_parts(text, text)[1]))
        except StorageError:  # outside the root, or ".." climbing out of it
            return None

    # --- reading ---------------------------------------------------------------------------

    def stat(self, path: str) -> Entry:
        with self._locate(path, follow=False) as location:
            info = location.lstat()
            return self._describe(location, location.name or ROOT, info)

    def list(self, path: str) -> Sequence[Entry]:
        with self._locate(path, follow=True) as location:
            try:
                directory = os.open(location.name or ".", LIST_FLAGS, dir_fd=location.fd)
            except OSError as error:
                raise storage_error(error, location.path) from None
            try:
                names = sorted(os.listdir(directory))
                parts = location.parts + ([location.name] if location.name is not None else [])
                entries: list[Entry] = []
                for name in names:
                    if name.startswith(TEMP_PREFIX):
                        continue
                    try:
                        info = os.stat(name, dir_fd=directory, follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # removed while we listed
                    child = _Location(directory, name, parts, location.path)
                    entries.append(self._describe(child, name, info))
                return entries
            except OSError as error:
                raise storage_error(error, location.path) from None
            finally:
                os.close(directory)

    def open_read(self, path: str, offset: int = 0, length: int | None = None) -> ReadStream:
        return self._open_read(path, offset, length, None)

    def open_read_checked(
        self, path: str, check: Callable[[str], None], offset: int = 0, length: int | None = None
    ) -> ReadStream:
        return self._open_read(path, offset, length, check)

    def _open_read(
        self, path: str, offset: int, length: int | None, check: Callable[[str], None] | None
    ) -> ReadStream:
        check_range(path, offset, length)
        with self._locate(path, follow=True) as location:
            if check is not None:
                check(location.real_path)
            if location.name is None:
                raise IsADirectory(f"'{location.path}' is a directory", location.path)
            try:
                fd = os.open(location.name, READ_FLAGS, dir_fd=location.fd)
            except OSError as error:
                raise storage_error(error, location.path) from None
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                raise IsADirectory(f"'{location.path}' is a directory", location.path)
            if not stat.S_ISREG(info.st_mode):
                raise NotSupported(f"'{location.path}' is not a regular file", location.path)
            # O_NONBLOCK (so a FIFO put here cannot hang the open) means nothing to a regular
            # file: left set, it saves two fcntl calls per file.
            if offset:
                os.lseek(fd, offset, os.SEEK_SET)
            if hasattr(os, "posix_fadvise"):
                os.posix_fadvise(fd, offset, 0, os.POSIX_FADV_SEQUENTIAL)
        except OSError as error:
            os.close(fd)
            raise storage_error(error, location.path) from None
        except BaseException:
            os.close(fd)
            raise
        name = posixpath.basename(location.path)
        entry = self._entry(name, info)

        def read(size: int) -> bytes:
            try:
                return os.read(fd, size)
            except OSError as error:
                raise storage_error(error, location.path) from None

        def readinto(buffer: memoryview) -> int:
            try:
                return os.readv(fd, [buffer])
            except OSError as error:
                raise storage_error(error, location.path) from None

        return ReadStream(
            entry, read, lambda: os.close(fd), length=length, chunk_size=self.chunk_size,
            readinto=readinto,
        )

    # --- writing ---------------------------------------------------------------------------

    def begin_write(self, path: str, options: WriteOptions | None = None) -> AtomicWriter:
        """As `Connector.begin_write`; a symlink at ``path`` is replaced by the new file, never
        written through."""
        return self._begin_write(path, options or WriteOptions(), None)

    def begin_write_checked(
        self, path: str, options: WriteOptions, check: Callable[[str], None]
    ) -> AtomicWriter:
        return self._begin_write(path, options, check)

    def _begin_write(
        self, path: str, options: WriteOptions, check: Callable[[str], None] | None
    ) -> AtomicWriter:
        canonical = normalize(path)
        _check_new_name(canonical)
        location = self._locate(canonical, follow=False)
        try:
            if check is not None:
                check(location.real_path)
            assert location.name is not None  # _check_new_name refused the root
            try:
                existing = os.stat(location.name, dir_fd=location.fd, follow_symlinks=False)
            except FileNotFoundError:
                pass
            else:
                # Refuse before any byte is sent, rather than after a large upload.
                if stat.S_ISDIR(existing.st_mode):
                    raise IsADirectory(f"'{canonical}' is a directory", canonical)
                if not options.overwrite:
                    raise AlreadyExists(f"'{canonical}' already exists", canonical)
            if options.resume_key is None:
                temp_name = TEMP_PREFIX + secrets.token_hex(16)
                temp_fd = os.open(temp_name, CREATE_FLAGS, 0o666, dir_fd=location.fd)
                kept = 0
            else:
                temp_name, temp_fd, kept = _open_kept(location.fd, options.resume_key, canonical)
        except OSError as error:
            location.close()
            raise storage_error(error, canonical) from None
        except BaseException:
            location.close()
            raise
        return PosixAtomicWriter(canonical, options, location, temp_name, temp_fd, kept)

    def commit_all(self, writers: Sequence[AtomicWriter]) -> Sequence[CommitOutcome]:
        """As `Connector.commit_all`, durably for all at the cost of two syncfs per filesystem
        rather than two fsyncs per file: the temporary files are made durable together,
        each then verified (when asked) and renamed, and the renames made durable together.
        Nothing is reported committed before it is durable at its final name."""
        outcomes: _Outcomes = [None] * len(writers)
        ready: _Ready = []
        for index, writer in enumerate(writers):
            if not isinstance(writer, PosixAtomicWriter):
                outcomes[index] = super().commit_all([writer])[0]
                continue
            try:
                ready.append((index, writer, writer.checked_digests()))
            except StorageError as error:
                outcomes[index] = error
        ready = self._sync_all(ready, outcomes)
        for _, writer, _ in ready:
            if writer.options.verify_on_disk:
                writer.prefetch_stored()
        renamed: _Ready = []
        for index, writer, digests in ready:
            try:
                if writer.options.verify_on_disk:
                    writer.stored_check(digests)
                writer.rename_into_place(writer.options.overwrite, writer.options.mtime)
            except StorageError as error:
                writer.abort()
                outcomes[index] = error
                continue
            renamed.append((index, writer, digests))
        for index, writer, digests in self._sync_all(renamed, outcomes):
            outcomes[index] = writer.committed(digests)
        for _, writer, _ in renamed:
            writer.release_published()
        return [outcome for outcome in outcomes if outcome is not None]

    @staticmethod
    def _sync_all(
        ready: _Ready, outcomes: _Outcomes
    ) -> _Ready:
        """syncfs each filesystem the writers' files are on; those of a filesystem that
        failed to sync are discarded, with the error as their outcome."""
        synced: dict[int, StorageError | None] = {}
        kept: _Ready = []
        for index, writer, digests in ready:
            try:
                device, fd = writer.sync_key()
                if device not in synced:
                    try:
                        sync_filesystem(fd)
                        synced[device] = None
                    except OSError as error:
                        synced[device] = storage_error(error, writer.path)
                failed = synced[device]
                if failed is not None:
                    raise failed
            except StorageError as error:
                writer.abort()
                outcomes[index] = error
                continue
            kept.append((index, writer, digests))
        return kept

    def mkdir(self, path: str, parents: bool = False) -> None:
        canonical = normalize(path)
        if canonical == ROOT:
            if parents:
                return
            raise AlreadyExists("The collection root already exists", ROOT)
        if not parents:
            self._mkdir_one(canonical)
            return
        parts = split(canonical)
        for depth in range(1, len(parts) + 1):
            step = join_parts(parts[:depth])
            try:
                self._mkdir_one(step)
            except AlreadyExists:
                # Walk into what is there, so a symlink leading outside is refused as such.
                with self._locate(step, follow=True) as existing:
                    is_directory = stat.S_ISDIR(existing.lstat().st_mode)
                if not is_directory:
                    raise AlreadyExists(
                        f"'{step}' exists and is not a directory", canonical
                    ) from None

    def _mkdir_one(self, canonical: str) -> None:
        _check_new_name(canonical)
        with self._locate(canonical, follow=False) as location:
            try:
                os.mkdir(location.name or ".", 0o777, dir_fd=location.fd)
            except OSError as error:
                raise storage_error(error, canonical) from None

    def rename(self, src: str, dst: str, *, overwrite: bool = False) -> None:
        source, destination = normalize(src), normalize(dst)
        if ROOT in (source, destination):
            raise InvalidPath("The collection root cannot be renamed", ROOT)
        _check_new_name(destination)
        if destination.startswith(source + "/"):
            raise InvalidArgument(f"'{source}' cannot be moved into itself", source)
        with (
            self._locate(source, follow=False) as old,
            self._locate(destination, follow=False) as new,
        ):
            assert old.name is not None and new.name is not None
            old.lstat()  # NotFound names the source, not "one of the two"
            if source == destination:
                return
            try:
                if overwrite:
                    os.rename(old.name, new.name, src_dir_fd=old.fd, dst_dir_fd=new.fd)
                else:
                    rename_noreplace(old.fd, old.name, new.fd, new.name)
            except FileExistsError:
                raise AlreadyExists(f"'{destination}' already exists", destination) from None
            except OSError as error:
                raise storage_error(
                    error, destination if error.errno in _DST_ERRNOS else source
                ) from None

    def delete(self, path: str, recursive: bool = False) -> None:
        canonical = normalize(path)
        if canonical == ROOT:
            raise InvalidPath("The collection root cannot be deleted", ROOT)
        with self._locate(canonical, follow=False) as location:
            assert location.name is not None
            info = location.lstat()
            try:
                if not stat.S_ISDIR(info.st_mode):
                    os.unlink(
                        location.name, dir_fd=location.fd
                    )  # a symlink itself, never its target
                elif recursive:
                    remove_tree(location.fd, location.name)
                else:
                    os.rmdir(location.name, dir_fd=location.fd)
            except OSError as error:
                raise storage_error(error, canonical) from None

    def symlink(self, path: str, target: str) -> None:
        """A symlink at ``path`` to the collection path ``target`` (absolute, or relative to the
        link's directory); stored as relative text so it works wherever the root is mounted."""
        canonical = normalize(path)
        _check_new_name(canonical)
        parent, _ = parent_and_name(canonical)
        if "\x00" in target or not target:
            raise InvalidPath("A symlink target must be a non-empty path", canonical)
        target_path = normalize(
            target if target.startswith("/") else posixpath.join(parent, target)
        )
        text = posixpath.relpath(target_path, parent)
        with self._locate(canonical, follow=False) as location:
            try:
                os.symlink(text, location.name or ".", dir_fd=location.fd)
            except OSError as error:
                raise storage_error(error, canonical) from None

    def real_path(self, path: str, *, follow: bool = True) -> str:
        with self._locate(path, follow=follow) as location:
            return location.real_path

    def set_mtime(self, path: str, mtime: float) -> None:
        """As `Connector.set_mtime`; a symlink's target (inside the root) is changed."""
        with self._locate(path, follow=True) as location:
            try:
                os.utime(
                    location.name or ".",
                    ns=(time.time_ns(), int(mtime * 1_000_000_000)),
                    dir_fd=location.fd,
                    follow_symlinks=False,
                )
            except OSError as error:
                raise storage_error(error, location.path) from None
            except (OverflowError, ValueError):
                raise InvalidArgument(
                    f"{mtime!r} is not a valid modification time", location.path
                ) from None


# `PosixConnector.commit_all`'s bookkeeping: each writer's outcome by position, and the
# writers still going (position, writer, digests of what was sent).
_Outcomes = list[CommitOutcome | None]
_Ready = list[tuple[int, "PosixAtomicWriter", dict[str, bytes]]]


def _open_kept(dir_fd: int, key: str, canonical: str) -> tuple[str, int, int]:
    """The temporary file named for ``key`` (made if missing, kept as it is if an earlier
    write left it): its name, descriptor and size."""
    if not RESUME_KEY.fullmatch(key):
        raise InvalidArgument("A resume key is 1 to 64 letters, digits or dashes", canonical)
    name = TEMP_PREFIX + key
    # Not O_EXCL (it may be there), never through a link, and only a regular file: a local
    # user could have put something else under the name.
    fd = os.open(name, (CREATE_FLAGS & ~os.O_EXCL) | os.O_NONBLOCK, 0o666, dir_fd=dir_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            raise InvalidPath(f"Something other than a partial file is in the way of '{canonical}'",
                              canonical)
        # O_NONBLOCK means nothing to a regular file: left set (see `open_read`).
    except BaseException:
        os.close(fd)
        raise
    return name, fd, info.st_size


def _check_new_name(canonical: str) -> None:
    if canonical == ROOT:
        raise InvalidPath("The collection root cannot be replaced", ROOT)
    if posixpath.basename(canonical).startswith(TEMP_PREFIX):
        raise InvalidPath(f"Names starting with '{TEMP_PREFIX}' are reserved", canonical)


# Errors of a rename that are about its destination rather than its source.
_DST_ERRNOS = {errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR}


class PosixAtomicWriter(AtomicWriter):
    """Writes into a reserved temporary name in the destination's directory (so the final
    rename never crosses filesystems), holding that directory's descriptor throughout."""

    def __init__(
        self,
        path: str,
        options: WriteOptions,
        location: _Location,
        temp_name: str,
        temp_fd: int,
        kept: int = 0,
    ) -> None:
        super().__init__(path, options)
        self._location = location
        self._temp_name: str | None = temp_name
        self._temp_fd = temp_fd
        self._kept = kept
        self._handed_to_disk = 0
        self._dropped = 0  # the file's cached pages before this offset were dropped
        # Its pages were dropped after the last write and are being read back from storage.
        self._prefetched = False
        # With background hashing, each range is read back (and hashed) as soon as it is
        # written, instead of the whole file after the fsync.
        self._verify = (
            BackgroundDigest(options.digest_algorithms())
            if options.background and options.verify_on_disk
            else None
        )
        self._read_back_buffer = bytearray()

    @property
    def resumable(self) -> int:
        return self._kept

    def _keep(self, offset: int) -> None:
        if offset == self._kept == 0:
            return  # a new, empty file, written from its start
        try:
            os.ftruncate(self._temp_fd, offset)
            os.lseek(self._temp_fd, offset, os.SEEK_SET)
        except OSError as error:
            raise storage_error(error, self.path) from None
        self._handed_to_disk = offset
        for start in range(0, offset, WRITEBACK_STEP):
            self._read_back(start, min(WRITEBACK_STEP, offset - start))

    def _read_back(self, start: int, length: int) -> None:
        if self._verify is None or not length:
            return
        fd = self._temp_fd
        # A range cut short by someone else shows as a size that differs at commit.
        self._verify.update_from(lambda: self._pread_reused(fd, length, start))

    def _pread_reused(self, fd: int, length: int, start: int) -> memoryview:
        """A range read into one buffer reused from range to range (in the verifying thread,
        which hashes each before reading the next): new memory for every range of a large
        file cost more than the reading."""
        if len(self._read_back_buffer) < length:
            self._read_back_buffer = bytearray(length)
        view = memoryview(self._read_back_buffer)[:length]
        return view[: os.preadv(fd, [view], start)]

    def checkpoint(self) -> int:
        written = self.size  # what was written before the sync began (writes may go on)
        try:
            os.fdatasync(self._temp_fd)
        except OSError as error:
            raise storage_error(error, self.path) from None
        self._drop_behind(written)
        return written

    def _drop_behind(self, durable: int) -> None:
        """Drop the cached pages of what is durable and already read back: a large copy holds
        a step or two of the page cache, not the whole file (evicting what others had cached),
        and its next writes reuse the pages just freed. On the project's virtual machines
        writing into pages that had been free for a while cost 5-6 s of system time per 2 GiB
        against about 1 s into pages freed just before (`benchmarks/fresh_writes.py`)."""
        if self._verify is not None:
            durable = min(durable, self._verify.size)
        if durable <= self._dropped or not hasattr(os, "posix_fadvise"):
            return
        with contextlib.suppress(OSError):  # best effort: only the cache's contents change
            os.posix_fadvise(self._temp_fd, self._dropped, durable - self._dropped,
                             os.POSIX_FADV_DONTNEED)
            self._dropped = durable

    def _write_chunks(self, chunks: Sequence[Chunk]) -> None:
        views = [memoryview(chunk) for chunk in chunks if chunk]
        end = self.size + sum(len(view) for view in views)  # the file's size once written
        first = 0  # views[first:] are still to be written
        try:
            while first < len(views):
                written = os.writev(self._temp_fd, views[first : first + IOV_MAX])
                while first < len(views) and written >= len(views[first]):
                    written -= len(views[first])
                    first += 1
                if written:  # a short write ended inside this chunk
                    views[first] = views[first][written:]
        except OSError as error:
            raise storage_error(error, self.path) from None
        self._read_back(self.size, end - self.size)
        # Written back while the rest arrives, the final fsync finds little left to do.
        if end - self._handed_to_disk >= WRITEBACK_STEP:
            start_writeback(self._temp_fd, self._handed_to_disk, end - self._handed_to_disk)
            self._handed_to_disk = end

    # `sync` and `stored_digests` are public so an account worker can drive the same steps.
    def sync(self) -> None:
        """fsync the temporary file."""
        try:
            os.fsync(self._temp_fd)
        except OSError as error:
            raise storage_error(error, self.path) from None

    def stored_digests(self, algorithms: Sequence[str]) -> tuple[int, dict[str, bytes]]:
        """Size and digests of the temporary file as read back from the storage."""
        return self._reread(algorithms)

    def prefetch_stored(self) -> None:
        """Drop the file's cached pages and have the storage read them back in the
        background, so the verifying reads of many files wait for the storage together
        rather than one after the other (best effort: `_reread` drops them itself else)."""
        if not hasattr(os, "posix_fadvise"):
            return
        try:
            os.posix_fadvise(self._temp_fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.posix_fadvise(self._temp_fd, 0, 0, os.POSIX_FADV_WILLNEED)
        except OSError:
            return
        self._prefetched = True

    def stored_check(self, digests: Mapping[str, bytes]) -> None:
        """Read the (durable) temporary file back and compare it with what was sent."""
        self._check_on_disk(digests)

    def _flush(self) -> None:
        self.sync()

    def _reread(self, algorithms: Sequence[str]) -> tuple[int, dict[str, bytes]]:
        if self._verify is not None and self._verify.algorithms == tuple(algorithms):
            try:
                read_back = self._verify.digests()  # waits for every range
            except OSError as error:
                raise storage_error(error, self.path) from None
            return self._verify.size, read_back
        digest = MultiDigest(algorithms)
        size = 0
        try:
            if hasattr(os, "posix_fadvise") and not self._prefetched:
                # Drop the cached pages, so the bytes come back from the storage itself.
                os.posix_fadvise(self._temp_fd, 0, 0, os.POSIX_FADV_DONTNEED)
            # Reads sized to what is expected (and a byte more, to see a longer file): a
            # small file costs no large buffer, and one read when it comes back short (the
            # end of a regular file).
            while True:
                wanted = min(REREAD_STEP, max(self.size - size, 0) + 1)
                chunk = os.pread(self._temp_fd, wanted, size)
                digest.update(chunk)
                size += len(chunk)
                if len(chunk) < wanted:
                    break
        except OSError as error:
            raise storage_error(error, self.path) from None
        return size, digest.digests()

    def _publish(self, overwrite: bool, mtime: float | None) -> None:
        try:
            self.rename_into_place(overwrite, mtime)
            fsync_directory(self._location.fd)
        finally:
            self.release_published()

    def rename_into_place(self, overwrite: bool, mtime: float | None) -> None:
        """Give the temporary file its final name (and ``mtime``); not yet durable: the
        caller syncs the directory (or the filesystem), then `release_published`."""
        assert self._temp_name is not None
        location, temp_name = self._location, self._temp_name
        assert location.name is not None
        self._stop_reading_back()
        try:
            if mtime is not None:
                os.utime(self._temp_fd, ns=(time.time_ns(), int(mtime * 1_000_000_000)))
            if overwrite:
                os.rename(temp_name, location.name, src_dir_fd=location.fd, dst_dir_fd=location.fd)
            else:
                rename_noreplace(location.fd, temp_name, location.fd, location.name)
            self._temp_name = None
        except FileExistsError:
            raise AlreadyExists(f"'{self.path}' already exists", self.path) from None
        except OSError as error:
            raise storage_error(error, self.path) from None
        except (OverflowError, ValueError):
            raise InvalidArgument(
                f"{mtime!r} is not a valid modification time", self.path
            ) from None

    def release_published(self) -> None:
        """Close what a published file held (nothing, before it was renamed)."""
        if self._temp_name is None:
            if self._temp_fd >= 0:
                os.close(self._temp_fd)
                self._temp_fd = -1
            self._location.close()

    def sync_key(self) -> tuple[int, int]:
        """(the filesystem the file is on, a descriptor of it that syncfs accepts)."""
        try:
            return os.fstat(self._temp_fd).st_dev, self._temp_fd
        except OSError as error:
            raise storage_error(error, self.path) from None

    def _stop_reading_back(self) -> None:
        if self._verify is not None:
            self._verify.close()

    def _keeps_for_resume(self) -> bool:
        self._stop_reading_back()
        if self._temp_fd >= 0:
            os.close(self._temp_fd)
            self._temp_fd = -1
        self._temp_name = None  # not ours to remove any more: a resumed write takes it over
        self._location.close()
        return True

    def _discard(self) -> None:
        self._stop_reading_back()
        if self._temp_fd >= 0:
            os.close(self._temp_fd)
            self._temp_fd = -1
        if self._temp_name is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._temp_name, dir_fd=self._location.fd)
            self._temp_name = None
        self._location.close()


__all__ = [
    "TEMP_PREFIX",
    "PosixAtomicWriter",
    "PosixConnector",
    "open_posix_connector",
    "storage_error",
]
