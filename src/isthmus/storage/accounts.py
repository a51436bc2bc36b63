"""Local POSIX accounts that file I/O can be done as, looked up in the password database."""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass
from functools import lru_cache

from isthmus.storage.errors import AccountNotFound


@dataclass(frozen=True)
class LocalAccount:
    """A local account: who files are read and written as on a mapped collection."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]  # every group id the account belongs to, primary included
    home: str

    @classmethod
    def lookup(cls, name: str) -> LocalAccount:
        """The account called ``name``; AccountNotFound when there is none."""
        if not name or "\x00" in name:
            raise AccountNotFound("An account name is required")
        try:
            record = pwd.getpwnam(name)
        except KeyError:
            raise AccountNotFound(f"There is no local account named '{name}'") from None
        return cls._from_record(record)

    @classmethod
    def current(cls) -> LocalAccount:
        """The account the server process runs as."""
        uid = os.geteuid()
        try:
            return cls._from_record(pwd.getpwuid(uid))
        except KeyError:
            # A container may run under a uid with no passwd entry; it is still an account.
            gid = os.getegid()
            return cls(str(uid), uid, gid, tuple(sorted({gid, *os.getgroups()})), "/")

    @classmethod
    def _from_record(cls, record: pwd.struct_passwd) -> LocalAccount:
        groups = tuple(sorted(set(os.getgrouplist(record.pw_name, record.pw_gid))))
        return cls(record.pw_name, record.pw_uid, record.pw_gid, groups, record.pw_dir)

    def group_names(self) -> frozenset[str]:
        """Names of the account's groups (numbers for groups without a name), for the POSIX
        gateway's ``groups_allow`` / ``groups_deny`` policies."""
        return frozenset(group_name(gid) for gid in self.groups)


@lru_cache(maxsize=4096)
def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


@lru_cache(maxsize=4096)
def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
