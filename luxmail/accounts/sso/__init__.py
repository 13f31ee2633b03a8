"""Single sign-on for staff: OpenID Connect (mozilla-django-oidc) and SAML 2.0 (djangosaml2).

Both protocols end in :func:`luxmail.accounts.sso.services.resolve_user`, which finds (or,
when allowed, creates) the account by email, applies the group -> role mapping and notes
whether the identity provider asserted MFA. Configuration and rules: docs/security.md
"Single sign-on"; settings: docs/operations.md.
"""
