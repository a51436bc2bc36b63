"""Opening a deployment: the database (migrated), the built-ins, and the signing key.

Both `isthmus serve` and the administrative commands start here, so either
works on a fresh data dir and both are safe while the other runs.
"""

from __future__ import annotations

from isthmus.auth.bootstrap import ensure_builtins
from isthmus.auth.keys import SigningKey
from isthmus.auth.service import AuthService
from isthmus.core.config import Settings
from isthmus.core.db import make_engine, make_sessionmaker, migrate, transaction
from isthmus.core.encryption import SecretBox
from isthmus.groups.membership import MembershipDirectory


def open_deployment(settings: Settings) -> AuthService:
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = make_engine(settings.database_url)
    migrate(engine)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        ensure_builtins(session, settings.local_idp_domain or None)
    return AuthService(
        settings=settings,
        engine=engine,
        sessions=sessions,
        signing_key=SigningKey.load_or_create(settings.keys_dir),
        groups=MembershipDirectory(sessions),
        secret_box=SecretBox.load_or_create(settings.keys_dir),
    )
