"""Prepare a DOT database: migrate, then register one confidential client-credentials app.

Run with the DOT venv's Python from this directory; prints one JSON line with
``client_id`` and ``client_secret`` (the plain secret, before DOT hashes it).

    python setup_dot.py --hash-client-secret true|false
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hash-client-secret", choices=["true", "false"], required=True)
    parser.add_argument("--name", default="bench")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dotbench.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from oauth2_provider.generators import generate_client_id, generate_client_secret
    from oauth2_provider.models import get_application_model

    call_command("migrate", verbosity=0, interactive=False)
    application_model = get_application_model()
    client_id = generate_client_id()
    secret = generate_client_secret()
    application = application_model(
        name=args.name,
        client_id=client_id,
        client_secret=secret,
        client_type=application_model.CLIENT_CONFIDENTIAL,
        authorization_grant_type=application_model.GRANT_CLIENT_CREDENTIALS,
        hash_client_secret=args.hash_client_secret == "true",
    )
    application.full_clean()
    application.save()
    stored = application_model.objects.get(pk=application.pk).client_secret
    json.dump({"client_id": client_id, "client_secret": secret,
               "stored_secret_is_hashed": stored != secret}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
