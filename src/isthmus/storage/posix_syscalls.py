"""The descriptor-relative system calls the POSIX connector is built from, and how their
errors become storage errors (naming collection paths, never host paths)."""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from collections.abc import Callable, Iterator

from isthmus.storage.errors import (
    AlreadyExists,
    DirectoryNotEmpty,
    InvalidArgument,
    InvalidPath,
    IsADirectory,
    NotADirectory,
    NotFound,
    NotSupported,
    PermissionDenied,
    QuotaExceeded,
    StorageError,
    StorageUnavailable,
)

O_PATH = getattr(os, "O_PATH", 0)
# Directories we only walk through: O_PATH needs search, not read, permission.
WALK_FLAGS = (O_PATH or os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
LIST_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
CREATE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

_ERRNO_ERRORS: dict[int, tuple[type[StorageError], str]] = {
    errno.ENOENT: (NotFound, "'{path}' does not exist"),
    errno.EEXIST: (AlreadyExists, "'{path}' already exists"),
    errno.ENOTDIR: (NotADirectory, "A component of '{path}' is not a directory"),
    errno.EISDIR: (IsADirectory, "'{path}' is a directory"),
    errno.ENOTEMPTY: (DirectoryNotEmpty, "The directory '{path}' is not empty"),
    errno.EACCES: (PermissionDenied, "Permission denied on '{path}'"),
    errno.EPERM: (PermissionDenied, "Operation not permitted on '{path}'"),
    errno.EROFS: (PermissionDenied, "'{path}' is on a read-only filesystem"),
    errno.ELOOP: (InvalidPath, "Too many levels of symbolic links in '{path}'"),
    errno.ENAMETOOLONG: (InvalidPath, "'{path}' is too long"),
    errno.ENOSPC: (QuotaExceeded, "No space left on the storage for '{path}'"),
    errno.EDQUOT: (QuotaExceeded, "The quota is exceeded writing '{path}'"),
    errno.EINVAL: (InvalidArgument, "Invalid operation on '{path}'"),
    errno.EXDEV: (NotSupported, "'{path}' cannot be moved across filesystems"),
}


def storage_error(error: OSError, path: str) -> StorageError:
    """The storage error for an OSError, naming only the collection path."""
    kind, template = _ERRNO_ERRORS.get(
        error.errno or 0, (StorageUnavailable, "The storage failed on '{path}'")
    )
    message = template.format(path=path)
    if kind is StorageUnavailable and error.errno:
        message += f" ({os.strerror(error.errno)})"
    return kind(message, path)


def fsync_directory(dir_fd: int) -> None:
    """Make a rename durable. Best effort: some filesystems cannot fsync a directory."""
    try:
        fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_tree(parent_fd: int, name: str) -> None:
    """Delete a directory tree below ``parent_fd`` without following any symlink: each level
    is opened with O_NOFOLLOW relative to its parent's descriptor."""
    top = os.open(name, LIST_FLAGS, dir_fd=parent_fd)
    # Each frame: (parent descriptor, name in it, the directory's descriptor, its entries).
    stack: list[tuple[int, str, int, Iterator[str]]] = [
        (parent_fd, name, top, iter(os.listdir(top)))
    ]
    try:
        while stack:
            parent, dir_name, directory, names = stack[-1]
            child = next(names, None)
            if child is None:
                stack.pop()
                os.close(directory)
                os.rmdir(dir_name, dir_fd=parent)
                continue
            try:
                info = os.stat(child, dir_fd=directory, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(info.st_mode):
                sub = os.open(child, LIST_FLAGS, dir_fd=directory)
                stack.append((directory, child, sub, iter(os.listdir(sub))))
            else:
                os.unlink(child, dir_fd=directory)
    finally:
        for _, _, directory, _ in stack:
            os.close(directory)


# renameat2(RENAME_NOREPLACE): an atomic "rename unless the destination exists" (Linux >= 3.15).
_RENAME_NOREPLACE = 1
_renameat2: Callable[[int, bytes, int, bytes, int], int] | None
try:
    _libc_renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    _libc_renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    _libc_renameat2.restype = ctypes.c_int
    _renameat2 = _libc_renameat2
except (AttributeError, OSError):
    _renameat2 = None


def rename_noreplace(src_fd: int, src: str, dst_fd: int, dst: str) -> None:
    if _renameat2 is not None:
        if _renameat2(src_fd, os.fsencode(src), dst_fd, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(code, os.strerror(code))
    # The filesystem cannot do it atomically: a hard link can (files); a directory is checked
    # first and then renamed, a small window that only the storage's own users could race.
    info = os.stat(src, dir_fd=src_fd, follow_symlinks=False)
    if not stat.S_ISDIR(info.st_mode):
        os.link(src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd, follow_symlinks=False)
        os.unlink(src, dir_fd=src_fd)
        return
    try:
        os.stat(dst, dir_fd=dst_fd, follow_symlinks=False)
    except FileNotFoundError:
        os.rename(src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
    else:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST))


# sync_file_range(SYNC_FILE_RANGE_WRITE): start writing a range of a file to storage without
# waiting for it (Linux). A large file written in one go otherwise sits in memory, dirty,
# until the final fsync writes all of it while the client waits.
_SYNC_FILE_RANGE_WRITE = 2
_sync_file_range: Callable[[int, int, int, int], int] | None
try:
    _libc_sync_file_range = ctypes.CDLL(None, use_errno=True).sync_file_range
    _libc_sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    _libc_sync_file_range.restype = ctypes.c_int
    _sync_file_range = _libc_sync_file_range
except (AttributeError, OSError):
    _sync_file_range = None


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Best effort: ask the kernel to begin writing ``length`` bytes at ``offset`` to storage;
    fsync still decides durability, it just has less left to do."""
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


# syncfs(2): make everything written to one filesystem durable in one call (Linux). Many small
# files written and then synced together cost one journal commit instead of one each.
_syncfs: Callable[[int], int] | None
try:
    _libc_syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    _libc_syncfs.argtypes = [ctypes.c_int]
    _libc_syncfs.restype = ctypes.c_int
    _syncfs = _libc_syncfs
except (AttributeError, OSError):
    _syncfs = None


def sync_filesystem(fd: int) -> None:
    """Make durable everything written to the filesystem holding ``fd`` (a descriptor opened
    for reading or writing, not O_PATH); ``os.sync`` where syncfs is missing."""
    if _syncfs is None:
        os.sync()
        return
    if _syncfs(fd) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


# openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS (Linux >= 5.6): open a path below a
# directory descriptor in one call, failing (ELOOP) at any symlink and (EXDEV) at any escape.
_SYS_OPENAT2 = 437  # the same number on every architecture Linux has added it to
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_BENEATH = 0x08


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


_syscall: Callable[..., int] | None
try:
    _syscall = ctypes.CDLL(None, use_errno=True).syscall
    _syscall.restype = ctypes.c_long
except (AttributeError, OSError):
    _syscall = None
_openat2_works = _syscall is not None and os.uname().sysname == "Linux"


def open_beneath(dir_fd: int, path: str, flags: int) -> int | None:
    """A descriptor for ``path`` (relative, no ``..``) below ``dir_fd`` opened with ``flags``
    when no component is a symlink and nothing fails; None otherwise (a symlink on the way,
    a missing component, no openat2), so the caller walks the path itself and reports what
    it finds exactly as it always does."""
    global _openat2_works
    if not _openat2_works or _syscall is None:
        return None
    how = _OpenHow(flags, 0, _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS)
    fd = _syscall(_SYS_OPENAT2, ctypes.c_int(dir_fd), os.fsencode(path), ctypes.byref(how),
                  ctypes.c_size_t(ctypes.sizeof(how)))
    if fd >= 0:
        return int(fd)
    if ctypes.get_errno() in (errno.ENOSYS, errno.E2BIG):  # no openat2 here
        _openat2_works = False
    return None
