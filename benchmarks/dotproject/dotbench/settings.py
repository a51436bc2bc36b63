"""Settings for the django-oauth-toolkit side of benchmarks/oauth_throughput.py.

Tuned to give DOT its best showing: DEBUG off, no middleware at all (the token
and introspection views need none), persistent database connections, and on
SQLite the same WAL / synchronous=NORMAL pragmas Isthmus uses plus
``BEGIN IMMEDIATE`` so concurrent writers queue instead of failing.

The database comes from the environment the benchmark sets:
``DOT_BENCH_DB=sqlite`` with ``DOT_BENCH_SQLITE_PATH``, or ``DOT_BENCH_DB=postgresql``
with ``DOT_BENCH_PG_NAME`` (on 127.0.0.1:5432 as user postgres).
"""

from __future__ import annotations

import os
from typing import Any

# Benchmark-only: this project never runs outside a throwaway directory.
SECRET_KEY = "benchmark-only-insecure-key-0123456789abcdefghijklmnopqrstuvwxyz"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "oauth2_provider",
]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "dotbench.urls"
WSGI_APPLICATION = "dotbench.wsgi.application"
TEMPLATES: list[dict[str, Any]] = []
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_BACKEND = os.environ.get("DOT_BENCH_DB", "sqlite")
DATABASES: dict[str, dict[str, Any]]
if _BACKEND == "postgresql":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ["DOT_BENCH_PG_NAME"],
            "USER": "postgres",
            "HOST": "127.0.0.1",
            "PORT": "5432",
            "CONN_MAX_AGE": None,
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("DOT_BENCH_SQLITE_PATH", "dot.sqlite3"),
            "CONN_MAX_AGE": None,
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }

# The same scope string the Isthmus side asks for, so request bodies match.
BENCH_SCOPE = "urn:globus:auth:scope:transfer.api.globus.org:all"
OAUTH2_PROVIDER = {
    "SCOPES": {
        "read": "Reading scope",
        "write": "Writing scope",
        "introspection": "Introspect tokens",
        BENCH_SCOPE: "Transfer (benchmark)",
    },
    "ACCESS_TOKEN_EXPIRE_SECONDS": 48 * 3600,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
