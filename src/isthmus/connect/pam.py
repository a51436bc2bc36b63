"""Checking a local account's password through PAM (libpam, through ctypes).

`authenticate` runs the service's ``auth`` stack with the password as the answer to
every hidden prompt, then its ``account`` stack (an expired or locked account is
refused). It never sleeps on failure: PAM's fail delay is handed to a callback that
ignores it, because a worker thread asleep for seconds is a denial of service; the
provider throttles failed logins itself (`oidc_provider`). Checking shadow passwords
needs root, which a GCS node runs as.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char_p,
    c_int,
    c_uint,
    c_void_p,
    cast,
    pointer,
    sizeof,
)

PAM_SUCCESS = 0
PAM_PROMPT_ECHO_OFF = 1
PAM_PROMPT_ECHO_ON = 2
PAM_FAIL_DELAY = 10
PAM_SILENT = 0x8000
PAM_DISALLOW_NULL_AUTHTOK = 0x0001
PAM_BUF_ERR = 5
_MAX_ANSWER = 1024


class PamMessage(Structure):
    _fields_ = [("msg_style", c_int), ("msg", c_char_p)]


class PamResponse(Structure):
    _fields_ = [("resp", c_char_p), ("resp_retcode", c_int)]


CONVERSE = CFUNCTYPE(c_int, c_int, POINTER(POINTER(PamMessage)),
                     POINTER(POINTER(PamResponse)), c_void_p)
FAIL_DELAY = CFUNCTYPE(None, c_int, c_uint, c_void_p)


class PamConv(Structure):
    _fields_ = [("conv", CONVERSE), ("appdata_ptr", c_void_p)]


class PamUnavailableError(RuntimeError):
    """libpam cannot be loaded on this machine."""


@functools.cache
def _libraries() -> tuple[ctypes.CDLL, ctypes.CDLL]:
    pam_name = ctypes.util.find_library("pam") or "libpam.so.0"
    c_name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        pam, libc = ctypes.CDLL(pam_name), ctypes.CDLL(c_name)
    except OSError:
        raise PamUnavailableError("libpam is not installed on this node "
                                  "(Debian: libpam0g)") from None
    pam.pam_start.argtypes = [c_char_p, c_char_p, POINTER(PamConv), POINTER(c_void_p)]
    pam.pam_start.restype = c_int
    pam.pam_set_item.argtypes = [c_void_p, c_int, c_void_p]
    pam.pam_set_item.restype = c_int
    pam.pam_authenticate.argtypes = [c_void_p, c_int]
    pam.pam_authenticate.restype = c_int
    pam.pam_acct_mgmt.argtypes = [c_void_p, c_int]
    pam.pam_acct_mgmt.restype = c_int
    pam.pam_end.argtypes = [c_void_p, c_int]
    pam.pam_end.restype = c_int
    libc.calloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
    libc.calloc.restype = c_void_p
    libc.strdup.argtypes = [c_char_p]
    libc.strdup.restype = c_void_p
    return pam, libc


def _ignore_delay(_status: int, _delay: int, _appdata: int | None) -> None:
    return None


_no_delay = FAIL_DELAY(_ignore_delay)


# libpam's modules are not all thread-safe (pam_unix reads /etc/shadow with getspnam).
_lock = threading.Lock()


def authenticate(service: str, username: str, password: str) -> bool:
    """Whether ``username`` may log in with ``password`` through PAM ``service``."""
    if not username or not password or len(password) > _MAX_ANSWER or "\x00" in password \
            or "\x00" in username:
        return False
    pam, libc = _libraries()
    secret = password.encode("utf-8")

    def answer(count: int, messages: ctypes._Pointer[ctypes._Pointer[PamMessage]],
                 answers: ctypes._Pointer[ctypes._Pointer[PamResponse]],
                 _appdata: int | None) -> int:
        # libpam frees the answers with free(): they must come from libc's allocator.
        block = libc.calloc(count, sizeof(PamResponse))
        if not block:
            return PAM_BUF_ERR
        answers[0] = cast(block, POINTER(PamResponse))
        for index in range(count):
            if messages[index].contents.msg_style in (PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON):
                answers[0][index].resp = cast(libc.strdup(secret), c_char_p)
                answers[0][index].resp_retcode = 0
        return PAM_SUCCESS

    converse = CONVERSE(answer)
    handle = c_void_p()
    conversation = PamConv(converse, None)
    with _lock:
        status = pam.pam_start(service.encode(), username.encode("utf-8"),
                               pointer(conversation), ctypes.byref(handle))
        if status != PAM_SUCCESS:
            return False
        try:
            pam.pam_set_item(handle, PAM_FAIL_DELAY, cast(_no_delay, c_void_p))
            status = pam.pam_authenticate(handle, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK)
            if status == PAM_SUCCESS:
                status = pam.pam_acct_mgmt(handle, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK)
        finally:
            pam.pam_end(handle, status)
    return bool(status == PAM_SUCCESS)
