"""What Auth's routes read and answer, described for the OpenAPI document.

The handlers read their query strings and bodies themselves (bounded bodies,
one error format, the SDK's exact field names), so FastAPI cannot infer them.
These fragments go into each route's ``openapi_extra``, so readers and fuzzers
(schemathesis, in the tests) see the parameters and bodies that matter, and
the shape of every answer: the Globus Auth error envelope for each 4xx.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

UUID: Schema = {"type": "string", "format": "uuid"}
TEXT: Schema = {"type": "string"}
FLAG: Schema = {"type": "boolean"}
URI: Schema = {"type": "string", "format": "uri"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def obj(properties: dict[str, Schema], *required: str, closed: bool = False) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


# --- answers ------------------------------------------------------------------------

ERROR: Schema = obj({
    "errors": {"type": "array", "minItems": 1, "items": obj({
        "status": TEXT, "code": TEXT, "id": TEXT, "title": TEXT, "detail": TEXT,
    }, "status", "code", "id", "title", "detail")},
    "error": TEXT,
    "error_description": TEXT,
}, "errors", "error", "error_description")


def _answers(success: Schema | None) -> Schema:
    responses: Schema = {"4XX": {
        "description": "Refused, in the Globus Auth error format",
        "content": {"application/json": {"schema": ERROR}},
    }}
    if success is not None:
        responses["200"] = {"content": {"application/json": {"schema": success}}}
    return responses


def _query(**parameters: Schema) -> list[Schema]:
    return [{"name": name, "in": "query", "required": False, "schema": schema}
            for name, schema in parameters.items()]


def operation(
    *, answer: Schema | None = None, query: dict[str, Schema] | None = None,
    json_body: tuple[str, Schema] | None = None, form: Schema | None = None,
    security: list[str] | None = None,
) -> Schema:
    """One route's ``openapi_extra``: its answer, query parameters and body, if any."""
    extra: Schema = {"responses": _answers(answer)}
    if query:
        extra["parameters"] = _query(**query)
    if json_body is not None:
        key, inner = json_body
        extra["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": obj({key: inner}, key)}}}
    if form is not None:
        extra["requestBody"] = {"required": True, "content": {
            "application/x-www-form-urlencoded": {"schema": form}}}
    if security:
        extra["security"] = [{name: []} for name in security]
    return extra


SECURITY_SCHEMES: Schema = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "An access token for auth.globus.org"},
    "basic": {"type": "http", "scheme": "basic",
              "description": "A confidential client's id and secret"},
}


def wrapped(key: str, inner: Schema | None = None, *, many: bool = False) -> Schema:
    """``{"key": {...}}`` or ``{"key": [...]}``, the management API's answers."""
    item = inner or {"type": "object"}
    return obj({key: array(item) if many else item}, key)


# --- the OAuth2 endpoints --------------------------------------------------------------

GRANT_TYPES = ["authorization_code", "refresh_token", "client_credentials",
               "urn:globus:auth:grant_type:dependent_token"]
_CLIENT_FIELDS: dict[str, Schema] = {"client_id": TEXT, "client_secret": TEXT}

TOKEN_RESPONSE = obj({
    "access_token": TEXT, "token_type": TEXT, "expires_in": {"type": "integer"},
    "resource_server": TEXT, "scope": TEXT, "refresh_token": nullable(TEXT),
    "id_token": TEXT, "state": TEXT, "other_tokens": array({"type": "object"}),
}, "access_token", "token_type", "expires_in", "resource_server", "scope")

TOKEN = operation(
    answer={"anyOf": [TOKEN_RESPONSE, array(TOKEN_RESPONSE)]},
    form=obj({
        "grant_type": {"type": "string", "enum": GRANT_TYPES},
        "code": TEXT, "redirect_uri": TEXT, "code_verifier": TEXT, "refresh_token": TEXT,
        "scope": TEXT, "token": TEXT, "access_type": {"type": "string", "enum": ["online",
                                                                                "offline"]},
        **_CLIENT_FIELDS,
    }, "grant_type"),
    security=["basic"],
)
INTROSPECT = operation(
    answer=obj({"active": FLAG}, "active"),
    form=obj({"token": TEXT, "include": TEXT, **_CLIENT_FIELDS}, "token"),
    security=["basic"],
)
REVOKE = operation(
    answer=obj({"active": FLAG}, "active"),
    form=obj({"token": TEXT, "token_type_hint": TEXT, **_CLIENT_FIELDS}, "token"),
    security=["basic"],
)
VALIDATE = operation(
    answer=obj({"active": FLAG}, "active"),
    form=obj({"token": TEXT, **_CLIENT_FIELDS}, "token"),
    security=["basic"],
)
USERINFO = operation(answer=obj({"sub": TEXT}, "sub"), security=["bearer"])
AUTHORIZE = {
    "parameters": _query(
        client_id=TEXT, redirect_uri=TEXT, scope=TEXT, state=TEXT,
        response_type={"type": "string", "enum": ["code"]},
        access_type={"type": "string", "enum": ["online", "offline"]},
        code_challenge=TEXT, code_challenge_method={"type": "string", "enum": ["S256"]},
        prompt={"type": "string", "enum": ["login"]}, prefill_named_grant=TEXT,
        session_required_identities=TEXT, session_required_single_domain=TEXT,
        session_required_policies=TEXT, session_required_mfa=TEXT, session_message=TEXT,
    ),
    "responses": {
        "200": {"description": "The login or consent page",
                "content": {"text/html": {"schema": TEXT}}},
        "303": {"description": "Back to the client's redirect URI"},
        "4XX": {"description": "The request cannot be completed (an HTML page)",
                "content": {"text/html": {"schema": TEXT}}},
    },
}


# --- the management API ---------------------------------------------------------------

_IDS_OR_ONE: Schema = {"anyOf": [array(UUID), UUID]}
PROJECT_FIELDS: dict[str, Schema] = {
    "display_name": TEXT, "contact_email": TEXT, "admin_ids": _IDS_OR_ONE,
    "admin_group_ids": _IDS_OR_ONE,
}
PROJECT = obj({"id": UUID, "display_name": TEXT, "contact_email": TEXT,
               "admin_ids": array(UUID), "admin_group_ids": array(UUID)},
              "id", "display_name", "contact_email", "admin_ids", "admin_group_ids")

POLICY_FIELDS: dict[str, Schema] = {
    "project_id": UUID, "display_name": TEXT, "description": nullable(TEXT),
    "high_assurance": FLAG, "required_mfa": FLAG,
    "authentication_assurance_timeout": nullable({"type": "integer", "minimum": 1,
                                                  "maximum": 2**31 - 1}),
    "domain_constraints_include": nullable(array(TEXT)),
    "domain_constraints_exclude": nullable(array(TEXT)),
}
POLICY = obj({"id": UUID, "project_id": UUID, "display_name": TEXT},
             "id", "project_id", "display_name")

CLIENT_TYPES = ["public_installed_client", "confidential_client", "client_identity",
                "resource_server", "hybrid_confidential_client_resource_server"]
CLIENT_FIELDS: dict[str, Schema] = {
    "name": TEXT, "project": UUID, "public_client": FLAG,
    "client_type": {"type": "string", "enum": CLIENT_TYPES},
    "visibility": {"type": "string", "enum": ["public", "private"]},
    "redirect_uris": array(URI), "fqdns": array(TEXT),
    "required_idp": nullable(UUID), "preselect_idp": nullable(UUID),
    "links": obj({"terms_and_conditions": nullable(URI), "privacy_policy": nullable(URI)}),
    "template_id": UUID,
}
CLIENT = obj({"id": UUID, "name": TEXT, "client_type": TEXT, "public_client": FLAG,
              "project": nullable(UUID), "redirect_uris": array(TEXT), "scopes": array(UUID)},
             "id", "name", "client_type", "public_client", "redirect_uris", "scopes")
CREDENTIAL = obj({"id": UUID, "name": TEXT, "client": UUID, "created": TEXT,
                  "secret": nullable(TEXT)}, "id", "name", "client", "secret")

DEPENDENT_SCOPE = obj({"scope": UUID, "optional": FLAG, "requires_refresh_token": FLAG},
                      "scope")
SCOPE_FIELDS: dict[str, Schema] = {
    "name": TEXT, "description": TEXT, "scope_suffix": {"type": "string",
                                                        "pattern": "^[a-z0-9_]{1,100}$"},
    "advertised": FLAG, "allows_refresh_token": FLAG, "required_domains": array(TEXT),
    "dependent_scopes": array(DEPENDENT_SCOPE),
}
SCOPE = obj({"id": UUID, "client": nullable(UUID), "scope_string": TEXT, "name": TEXT,
             "description": TEXT, "dependent_scopes": array(DEPENDENT_SCOPE)},
            "id", "scope_string", "name", "description", "dependent_scopes")

MANAGE = ["bearer"]
LIST_PROJECTS = operation(answer=wrapped("projects", PROJECT, many=True), security=MANAGE)
CREATE_PROJECT = operation(
    answer=wrapped("project", PROJECT), security=MANAGE,
    json_body=("project", obj(PROJECT_FIELDS, "display_name", "contact_email")))
ONE_PROJECT = operation(answer=wrapped("project", PROJECT), security=MANAGE)
UPDATE_PROJECT = operation(answer=wrapped("project", PROJECT), security=MANAGE,
                           json_body=("project", obj(PROJECT_FIELDS)))

LIST_POLICIES = operation(answer=wrapped("policies", POLICY, many=True), security=MANAGE)
CREATE_POLICY = operation(
    answer=wrapped("policy", POLICY), security=MANAGE,
    json_body=("policy", obj(POLICY_FIELDS, "project_id", "display_name")))
ONE_POLICY = operation(answer=wrapped("policy", POLICY), security=MANAGE)
UPDATE_POLICY = operation(answer=wrapped("policy", POLICY), security=MANAGE,
                          json_body=("policy", obj(POLICY_FIELDS)))

LIST_CLIENTS = operation(
    answer={"anyOf": [wrapped("clients", CLIENT, many=True), wrapped("client", CLIENT)]},
    query={"fqdn": TEXT}, security=MANAGE)
CREATE_CLIENT = {
    **operation(answer=wrapped("client", CLIENT), json_body=("client", obj(CLIENT_FIELDS))),
    # A project admin's token, a parent client's credentials, or nothing (a native-app
    # instance from a template).
    "security": [{"bearer": []}, {"basic": []}, {}],
}
ONE_CLIENT = operation(answer=wrapped("client", CLIENT), security=MANAGE)
DELETE_CLIENT = {**ONE_CLIENT, "security": [{"bearer": []}, {"basic": []}]}
UPDATE_CLIENT = operation(answer=wrapped("client", CLIENT), security=MANAGE,
                          json_body=("client", obj(CLIENT_FIELDS)))

LIST_CREDENTIALS = operation(answer=wrapped("credentials", CREDENTIAL, many=True),
                             security=MANAGE)
CREATE_CREDENTIAL = operation(answer=wrapped("credential", CREDENTIAL), security=MANAGE,
                              json_body=("credential", obj({"name": TEXT}, "name")))
ONE_CREDENTIAL = operation(answer=wrapped("credential", CREDENTIAL), security=MANAGE)

LIST_SCOPES = operation(answer=wrapped("scopes", SCOPE, many=True), security=MANAGE,
                        query={"ids": TEXT, "scope_strings": TEXT})
CREATE_SCOPE = operation(
    answer=wrapped("scope", SCOPE), security=MANAGE,
    json_body=("scope", obj(SCOPE_FIELDS, "name", "description", "scope_suffix")))
ONE_SCOPE = operation(answer=wrapped("scope", SCOPE), security=MANAGE)
UPDATE_SCOPE = operation(answer=wrapped("scope", SCOPE), security=MANAGE,
                         json_body=("scope", obj(SCOPE_FIELDS)))


# --- identities -------------------------------------------------------------------------

IDENTITY = obj({"id": UUID, "username": TEXT, "status": TEXT, "identity_provider": UUID},
               "id", "username", "status", "identity_provider")
_LOOKUP = ["bearer", "basic"]
GET_IDENTITIES = operation(
    answer=wrapped("identities", IDENTITY, many=True), security=_LOOKUP,
    query={"ids": TEXT, "usernames": TEXT, "provision": {"type": "string",
                                                          "enum": ["true", "false"]}})
GET_IDENTITY_PROVIDERS = operation(
    answer=wrapped("identity_providers", obj({"id": UUID, "name": TEXT}, "id", "name"),
                   many=True),
    security=_LOOKUP, query={"domains": TEXT, "ids": TEXT})
GET_CONSENTS = operation(answer=wrapped("consents", many=True), security=["bearer"],
                         query={"all": {"type": "string", "enum": ["True", "False"]}})


def finish_document(document: Schema) -> Schema:
    """The app-wide parts: security schemes, and no FastAPI 422s (bad input is a 400 here)."""
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    schemas = components.get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    if not schemas:
        components.pop("schemas", None)
    for item in document.get("paths", {}).values():
        for operation_ in item.values():
            if isinstance(operation_, dict):
                operation_.get("responses", {}).pop("422", None)
    return document
