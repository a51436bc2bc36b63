"""Storage connectors: one interface (`connector.Connector`) over POSIX directories now, S3 and
WebDAV later. Knows nothing of tasks, collections or users; Transfer and Connect use it."""

from isthmus.storage.accounts import LocalAccount
from isthmus.storage.connector import (
    CHUNK_SIZE,
    AtomicWriter,
    Connector,
    Entry,
    EntryType,
    ReadStream,
    WriteOptions,
    WriteResult,
)
from isthmus.storage.posix import PosixConnector, open_posix_connector

__all__ = [
    "CHUNK_SIZE",
    "AtomicWriter",
    "Connector",
    "Entry",
    "EntryType",
    "LocalAccount",
    "PosixConnector",
    "ReadStream",
    "WriteOptions",
    "WriteResult",
    "open_posix_connector",
]
