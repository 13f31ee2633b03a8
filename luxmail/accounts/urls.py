from django.contrib.auth import views as auth_views
from django.urls import path

from luxmail.accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("mfa/", views.mfa_verify, name="mfa_verify"),
    path("mfa/enrol/", views.mfa_enrol, name="mfa_enrol"),
    # Under /accounts/mfa/ so an Admin who must register a passkey can reach it.
    path("mfa/passkey/", views.passkey_enrol, name="passkey_enrol"),
    # Factor management needs a verified session: deliberately outside /accounts/mfa/.
    path("security/", views.security, name="security"),
    path("security/backup-codes/", views.backup_codes_regenerate, name="backup_codes"),
    path("security/remove/", views.device_remove, name="device_remove"),
]
