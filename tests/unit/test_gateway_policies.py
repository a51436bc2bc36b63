"""A storage gateway's access policies: allowed domains, users_allow/deny, groups_allow/deny,
and choosing the account, each refusal carrying the GCS error detail document."""

from __future__ import annotations

import pytest

from isthmus.connect.gateway_policies import (
    AccountDeniedError,
    NoAccountMappedError,
    NotFromAllowedDomainError,
    check_groups_allowed,
    check_user_allowed,
    identity_domain,
    in_allowed_domains,
    require_allowed_domain,
    select_account,
)


def test_an_identitys_domain_is_its_usernames() -> None:
    assert identity_domain({"username": "Ann@Example.ORG"}) == "example.org"
    assert identity_domain({"username": "odd@name@example.org"}) == "example.org"
    assert identity_domain({"username": "no-domain"}) is None
    assert identity_domain({}) is None
    assert in_allowed_domains({"username": "ann@example.org"}, ["EXAMPLE.org"])
    assert not in_allowed_domains({"username": "ann@example.org.evil"}, ["example.org"])
    assert not in_allowed_domains({"username": "ann@sub.example.org"}, ["example.org"])
    assert not in_allowed_domains({"username": "ann@example.org"}, [])


def test_someone_without_an_identity_in_an_allowed_domain_is_refused() -> None:
    ann = {"username": "ann@example.org"}
    eve = {"username": "eve@evil.org"}
    assert require_allowed_domain([eve, ann], ["example.org"]) == [ann]
    with pytest.raises(NotFromAllowedDomainError) as raised:
        require_allowed_domain([eve], ["example.org", "lab.example.org"])
    assert raised.value.detail == {
        "DATA_TYPE": "not_from_allowed_domain#1.0.0",
        "allowed_domains": ["example.org", "lab.example.org"],
    }
    assert "example.org, lab.example.org" in raised.value.message


def test_users_deny_wins_and_users_allow_admits_only_its_members() -> None:
    check_user_allowed("ann", None, None)
    check_user_allowed("ann", [], [])
    check_user_allowed("ann", ["ann", "bea"], ["root"])
    with pytest.raises(AccountDeniedError) as raised:
        check_user_allowed("root", None, ["root"])
    assert raised.value.detail == {"DATA_TYPE": "invalid_user#1.0.0", "usernames": ["root"]}
    assert "users_deny" in raised.value.message
    with pytest.raises(AccountDeniedError, match="users_deny"):
        check_user_allowed("ann", ["ann"], ["ann"])
    with pytest.raises(AccountDeniedError, match="users_allow"):
        check_user_allowed("cid", ["ann", "bea"], None)


def test_posix_group_policies() -> None:
    check_groups_allowed("ann", {"ann", "lab"}, None, None)
    check_groups_allowed("ann", {"ann", "lab"}, ["lab", "staff"], ["banned"])
    with pytest.raises(AccountDeniedError, match="'banned' is in groups_deny"):
        check_groups_allowed("ann", {"lab", "banned"}, ["lab"], ["banned"])
    with pytest.raises(AccountDeniedError, match="groups_allow"):
        check_groups_allowed("ann", {"ann"}, ["lab"], None)


def test_the_account_is_the_one_asked_for_or_the_most_preferred() -> None:
    assert select_account(["ann", "shared"]) == "ann"
    assert select_account(["ann", "shared"], "shared") == "shared"
    with pytest.raises(AccountDeniedError) as raised:
        select_account(["ann"], "root")
    assert raised.value.detail["usernames"] == ["root"]
    with pytest.raises(NoAccountMappedError) as missing:
        select_account([])
    assert missing.value.detail["DATA_TYPE"] == "credential_not_found#1.0.0"
