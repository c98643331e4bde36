"""Discovery and the JWKS: per-instance issuer, ZITADEL's paths, keys made on first use."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api

pytestmark = pytest.mark.anyio


async def test_discovery_names_the_issuer_of_the_request_host_and_zitadels_paths(api: Api) -> None:
    r = await api.client.get("/.well-known/openid-configuration")
    assert r.status_code == 200
    doc = r.json()
    # ExternalSecure false and ExternalPort 8080 by default: http://<host>:8080
    issuer = doc["issuer"]
    port = api.runtime.settings.ExternalPort
    assert issuer == (f"http://localhost:{port}" if port != 80 else "http://localhost")
    assert doc["token_endpoint"] == f"{issuer}/oauth/v2/token"
    assert doc["introspection_endpoint"] == f"{issuer}/oauth/v2/introspect"
    assert doc["revocation_endpoint"] == f"{issuer}/oauth/v2/revoke"
    assert doc["userinfo_endpoint"] == f"{issuer}/oidc/v1/userinfo"
    assert doc["jwks_uri"] == f"{issuer}/oauth/v2/keys"
    assert doc["authorization_endpoint"] == f"{issuer}/oauth/v2/authorize"
    assert set(doc["grant_types_supported"]) == {
        "authorization_code",
        "refresh_token",
        "implicit",
        "urn:ietf:params:oauth:grant-type:device_code",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "urn:ietf:params:oauth:grant-type:token-exchange",
    }
    assert set(doc["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    }
    assert "none" not in doc["introspection_endpoint_auth_methods_supported"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert {"openid", "profile", "email", "phone", "offline_access"} <= set(doc["scopes_supported"])
    assert "urn:zitadel:iam:org:project:id:zitadel:aud" in doc["scopes_supported"]
    assert set(doc["id_token_signing_alg_values_supported"]) == {
        "ES256",
        "ES384",
        "ES512",
        "RS256",
        "RS384",
        "RS512",
        "EdDSA",
    }
    assert "HS256" not in doc["token_endpoint_auth_signing_alg_values_supported"]
    assert "none" not in doc["token_endpoint_auth_signing_alg_values_supported"]


async def test_the_jwks_publishes_an_active_and_a_next_key_with_a_cache_header(api: Api) -> None:
    r = await api.client.get("/oauth/v2/keys")
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=300"
    keys = r.json()["keys"]
    assert len(keys) == 2
    for key in keys:
        assert key["kty"] == "EC" and key["crv"] == "P-256" and key["alg"] == "ES256"
        assert key["use"] == "sig" and key["kid"]
        assert "d" not in key  # never the private half
    again = (await api.client.get("/oauth/v2/keys")).json()["keys"]
    assert [k["kid"] for k in again] == [k["kid"] for k in keys]
