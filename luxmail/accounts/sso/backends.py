"""Authentication backends for OpenID Connect and SAML 2.0 sign-in.

Both defer to :func:`luxmail.accounts.sso.services.resolve_user`; the libraries do the
protocol work (mozilla-django-oidc: code flow with PKCE and nonce, RS256 ID-token
signature against the IdP's JWKS; djangosaml2/pysaml2: signed assertion, audience,
validity window, InResponseTo). Neither answers a username/password sign-in.
"""

from __future__ import annotations

import logging
from typing import Any

import jwt
import requests
from django.core.exceptions import SuspiciousOperation
from djangosaml2.backends import Saml2Backend
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS

from luxmail import conf
from luxmail.accounts.sso import services

logger = logging.getLogger(__name__)


class OIDCBackend(OIDCAuthenticationBackend):
    def authenticate(self, request: Any, **kwargs: Any) -> Any:
        if not conf.oidc_enabled() or "username" in kwargs or "password" in kwargs:
            return None
        try:
            return super().authenticate(request, **kwargs)
        except (requests.RequestException, jwt.PyJWTError, SuspiciousOperation) as error:
            # IdP unreachable, token endpoint refused the code, bad or unsigned ID token:
            # the sign-in fails (the callback view shows "single sign-on failed").
            logger.warning("OIDC sign-in refused: %s", type(error).__name__)
            services.protocol_failed(protocol="oidc", request=request)
            return None
        except (KeyError, ValueError, TypeError):
            logger.warning("OIDC sign-in refused: malformed answer from the provider")
            services.protocol_failed(protocol="oidc", request=request)
            return None

    def retrieve_matching_jwk(self, token: str) -> Any:
        """The IdP's signing key for ``token``: by ``kid`` when the token names one.

        Some providers (and the test provider) sign without a ``kid`` header; the key is
        then taken only when the JWKS holds exactly one signing key for the algorithm.
        """
        header = jwt.get_unverified_header(token)
        if "kid" in header:
            return super().retrieve_matching_jwk(token)
        response = requests.get(
            self.OIDC_OP_JWKS_ENDPOINT,
            verify=self.get_settings("OIDC_VERIFY_SSL", True),
            timeout=self.get_settings("OIDC_TIMEOUT", None),
        )
        response.raise_for_status()
        keys = [
            key
            for key in response.json().get("keys", [])
            if isinstance(key, dict)
            and key.get("use", "sig") == "sig"
            and key.get("alg", header.get("alg")) == header.get("alg")
        ]
        if len(keys) != 1:
            raise SuspiciousOperation("ID token without kid and no single matching JWK.")
        return jwt.PyJWK(keys[0])

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        # ``payload``: the ID token, its signature verified. MFA is read from it only:
        # the userinfo endpoint is not a statement about this authentication.
        claims: dict[str, Any] = {}
        if self.OIDC_OP_USER_ENDPOINT:
            userinfo = self.get_userinfo(access_token, id_token, payload)
            if isinstance(userinfo, dict) and userinfo.get("sub") == payload.get("sub"):
                claims.update(userinfo)
        claims.update(payload)
        groups = claims.get(conf.oidc_groups_claim()) or []
        return services.resolve_user(
            protocol="oidc",
            email=claims.get("email"),
            email_verified=claims.get("email_verified", True),
            groups=groups if isinstance(groups, list) else [groups],
            mfa=services.oidc_mfa_asserted(payload),
            request=self.request,
        )


class SAMLBackend(Saml2Backend):
    def authenticate(
        self,
        request: Any,
        session_info: dict[str, Any] | None = None,
        attribute_mapping: Any = None,
        create_unknown_user: bool = False,
        assertion_info: Any = None,
        **kwargs: Any,
    ) -> Any:
        if not conf.saml_enabled() or not isinstance(session_info, dict):
            return None
        ava = session_info.get("ava") or {}
        emails = ava.get(conf.saml_email_attribute()) or []
        email: Any = emails[0] if emails else None
        name_id = session_info.get("name_id")
        if email is None and getattr(name_id, "format", None) == NAMEID_FORMAT_EMAILADDRESS:
            email = getattr(name_id, "text", None)
        contexts = [str(entry[0]) for entry in session_info.get("authn_info") or [] if entry]
        return services.resolve_user(
            protocol="saml",
            email=email,
            groups=ava.get(conf.saml_groups_attribute()) or [],
            mfa=services.saml_mfa_asserted(contexts),
            request=request,
        )
