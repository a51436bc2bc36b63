"""The errors every storage connector raises, so HTTP layers can map them to their own formats.

The tree::

    StorageError                  anything a connector refuses or fails to do
    ├── NotFound                  no such file or directory (or a parent is missing)
    ├── AlreadyExists             the name is taken (mkdir, rename or write without overwrite)
    ├── NotADirectory             a directory was needed (list, or a parent in the path)
    ├── IsADirectory              a file was needed (read, checksum, write over a directory)
    ├── DirectoryNotEmpty         delete without ``recursive``, or rename over a full directory
    ├── PermissionDenied          the storage (or the mapped account) may not do this
    │   └── AccountNotPermitted   the server cannot act as the mapped account at all
    ├── AccountNotFound           the mapped local account does not exist
    ├── InvalidPath               NUL bytes, over-long names, symlink loops, the root as a target
    │   └── PathEscape            ``..``, absolute or symlinked ways out of the collection root
    ├── InvalidArgument           a bad offset, length, algorithm, or a rename into itself
    │   └── UnsupportedAlgorithm  a checksum algorithm this connector does not compute
    ├── IntegrityError            what was written is not what was expected
    │   ├── SizeMismatch          ... in size (``expected_size``)
    │   └── ChecksumMismatch      ... in content (``expected_digests`` or the on-disk re-read)
    ├── QuotaExceeded             no space left, or the account's quota is used up
    ├── NotSupported              the operation does not exist on this storage (e.g. symlinks on S3)
    └── StorageUnavailable        the storage itself failed (I/O error, a worker process died)

Every error carries the collection-relative ``path`` it is about (never a host path, so an
error message cannot tell a client where the collection lives on the server's disk).
"""

from __future__ import annotations


class StorageError(Exception):
    """A storage operation that was refused or failed; ``path`` is collection-relative.

    ``http_status`` is a default for plain HTTP (the HTTPS/WebDAV data server); each API
    still maps errors to its own codes (Transfer's ``ExternalError.*``, GCS's ``code``).
    """

    http_status = 500

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


class NotFound(StorageError):
    http_status = 404


class AlreadyExists(StorageError):
    http_status = 409


class NotADirectory(StorageError):
    http_status = 409


class IsADirectory(StorageError):
    http_status = 409


class DirectoryNotEmpty(StorageError):
    http_status = 409


class PermissionDenied(StorageError):
    http_status = 403


class AccountNotPermitted(PermissionDenied):
    pass


class AccountNotFound(StorageError):
    http_status = 403


class InvalidPath(StorageError):
    http_status = 400


class PathEscape(InvalidPath):
    http_status = 403


class InvalidArgument(StorageError):
    http_status = 400


class UnsupportedAlgorithm(InvalidArgument):
    pass


class IntegrityError(StorageError):
    http_status = 422


class SizeMismatch(IntegrityError):
    pass


class ChecksumMismatch(IntegrityError):
    pass


class QuotaExceeded(StorageError):
    http_status = 507


class NotSupported(StorageError):
    http_status = 501


class StorageUnavailable(StorageError):
    http_status = 503


def _subclasses(cls: type[StorageError]) -> list[type[StorageError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_subclasses(sub))
    return found


# By name, for carrying an error across a process boundary as plain data (never pickle).
ERROR_TYPES: dict[str, type[StorageError]] = {
    cls.__name__: cls for cls in _subclasses(StorageError)
}
