"""Single sign-on endpoints: /oidc/… (OpenID Connect) and /saml2/… (SAML 2.0).

The URL names are the libraries' own (``oidc_authentication_callback`` is what
mozilla-django-oidc reverses for its redirect URI).
"""

from django.urls import path

from luxmail.accounts.sso import views

urlpatterns = [
    path("oidc/authenticate/", views.oidc_authenticate, name="oidc_authentication_init"),
    path("oidc/callback/", views.oidc_callback, name="oidc_authentication_callback"),
    path("saml2/login/", views.saml_login, name="saml2_login"),
    path("saml2/acs/", views.saml_acs, name="saml2_acs"),
    path("saml2/metadata/", views.saml_metadata, name="saml2_metadata"),
]
