"""How Auth records look on the wire (the shapes the SDK and CLI read)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from isthmus.auth import clients
from isthmus.auth.models import (
    Client,
    ClientCredential,
    Consent,
    Identity,
    IdentityProvider,
    Policy,
    Project,
    Scope,
)


def iso(moment: datetime) -> str:
    # +00:00 rather than Z: datetime.fromisoformat before 3.11 rejects Z.
    return moment.isoformat()


def identity_document(identity: Identity) -> dict[str, Any]:
    return {
        "id": str(identity.id),
        "username": identity.username,
        "name": identity.name,
        "email": identity.email,
        "organization": identity.organization,
        "identity_provider": str(identity.identity_provider_id),
        "status": identity.status,
        "identity_type": identity.identity_type,
    }


def client_document(session: Session, client: Client) -> dict[str, Any]:
    owned_scopes = session.scalars(select(Scope.id).where(Scope.client_id == client.id))
    return {
        "id": str(client.id),
        "name": client.name,
        "public_client": client.public_client,
        "client_type": client.client_type,
        "project": str(client.project_id) if client.project_id else None,
        "parent_client": str(client.parent_client_id) if client.parent_client_id else None,
        "grant_types": clients.grant_types(client),
        "redirect_uris": list(client.redirect_uris),
        "scopes": [str(scope_id) for scope_id in owned_scopes],
        "fqdns": list(client.fqdns),
        "visibility": client.visibility,
        "links": {
            "terms_and_conditions": client.links.get("terms_and_conditions"),
            "privacy_policy": client.links.get("privacy_policy"),
        },
        "required_idp": str(client.required_idp) if client.required_idp else None,
        "preselect_idp": str(client.preselect_idp) if client.preselect_idp else None,
        "prompt_for_named_grant": client.public_client,
        "userinfo_from_effective_identity": True,
    }


def credential_document(credential: ClientCredential, secret: str | None) -> dict[str, Any]:
    return {
        "id": str(credential.id),
        "name": credential.name,
        "client": str(credential.client_id),
        "created": iso(credential.created),
        "secret": secret,
    }


def consent_document(consent: Consent) -> dict[str, Any]:
    return {
        "id": consent.id,
        "client": str(consent.client_id),
        "scope": str(consent.scope_id),
        "scope_name": consent.scope.scope_string,
        "effective_identity": str(consent.identity_id),
        "dependency_path": list(consent.dependency_path),
        "created": iso(consent.created),
        "updated": iso(consent.updated),
        "last_used": iso(consent.last_used),
        "status": consent.status,
        "allows_refresh": consent.allows_refresh,
        "auto_approved": consent.auto_approved,
        "atomically_revocable": consent.atomically_revocable,
    }


def project_document(session: Session, project: Project) -> dict[str, Any]:
    identity_ids = project.admin_ids("identity")
    admins = session.scalars(select(Identity).where(Identity.id.in_(identity_ids))).all()
    group_ids = project.admin_ids("group")
    return {
        "id": str(project.id),
        "display_name": project.display_name,
        "project_name": project.display_name,
        "contact_email": project.contact_email,
        "admin_ids": [str(item) for item in identity_ids],
        "admin_group_ids": [str(item) for item in group_ids],
        "admins": {
            "identities": [identity_document(identity) for identity in admins],
            "groups": [{"id": str(item)} for item in group_ids],
        },
    }


def policy_document(policy: Policy) -> dict[str, Any]:
    return {
        "id": str(policy.id),
        "project_id": str(policy.project_id),
        "display_name": policy.display_name,
        "description": policy.description,
        "high_assurance": policy.high_assurance,
        "authentication_assurance_timeout": policy.authentication_assurance_timeout,
        "required_mfa": policy.required_mfa,
        "domain_constraints_include": policy.domain_constraints_include,
        "domain_constraints_exclude": policy.domain_constraints_exclude,
    }


def scope_document(scope: Scope) -> dict[str, Any]:
    return {
        "id": str(scope.id),
        "client": str(scope.client_id) if scope.client_id else None,
        "scope_string": scope.scope_string,
        "name": scope.name,
        "description": scope.description,
        "advertised": scope.advertised,
        "allows_refresh_token": scope.allows_refresh_token,
        "required_domains": list(scope.required_domains),
        "dependent_scopes": [
            {"scope": str(dep.dependent_scope_id), "optional": dep.optional,
             "requires_refresh_token": dep.requires_refresh_token}
            for dep in scope.dependencies
        ],
    }


def identity_provider_document(provider: IdentityProvider) -> dict[str, Any]:
    return {
        "id": str(provider.id),
        "name": provider.name,
        "short_name": provider.short_name,
        "domains": list(provider.domains),
        "alternative_names": list(provider.alternative_names),
    }
