"""API keys: shown once, stored hashed, scoped, revocable, expiring, audited; session API."""

import hashlib
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from luxmail.api import services
from luxmail.api.scopes import SCOPES, scopes_for_user
from luxmail.models import ApiKey, AuditEvent
from luxmail.testing import require


class ScopedView(APIView):
    """A tiny endpoint guarded like every real one: by ``required_scopes``."""

    # Scopes granted by core permissions, so the test does not depend on other apps.
    required_scopes = {"GET": "phi:read", "POST": "webhooks:manage"}

    def get(self, request):
        return Response({"ok": True})

    def post(self, request):
        return Response({"sent": True})


def call_scoped(method, *, key=None, user=None):
    factory = APIRequestFactory()
    request = getattr(factory, method)("/api/v1/test-scoped/")
    if key:
        request.META["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    if user is not None:
        from rest_framework.test import force_authenticate

        force_authenticate(request, user=user)
    return ScopedView.as_view()(request)


def bearer(raw):
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def issue(db):
    def factory(scopes=("contacts:read",), **kwargs):
        return services.api_key_create(
            name="Integration", scopes=list(scopes), actor=None, **kwargs
        )

    return factory


# --- created in the UI, shown once, stored hashed --------------------------------------


@pytest.mark.django_db
@pytest.mark.postgres
def test_key_is_shown_once_and_only_its_hash_is_stored(staff_client):
    require(connection.vendor == "postgresql", "needs PostgreSQL (searches every table)")
    admin = staff_client("Admin")
    response = admin.post(
        reverse("api_keys"), {"name": "EHR sync", "scopes": ["contacts:read", "reports:read"]}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    raw = re.search(r'id="issued-key">([^<]+)<', response.content.decode()).group(1)
    key = ApiKey.objects.get(name="EHR sync")
    assert key.scopes == ["contacts:read", "reports:read"]
    assert key.secret_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw.startswith(f"lmk_{key.prefix}_")
    # Never shown again.
    assert raw not in admin.get(reverse("api_keys")).content.decode()
    # The secret part is nowhere in the database: not in any column of any table.
    secret = raw.split("_", 2)[2]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
        tables = [row[0] for row in cursor.fetchall()]
        assert "luxmail_apikey" in tables and "django_session" in tables
        for table in tables:
            cursor.execute(
                f'SELECT count(*) FROM "{table}" t WHERE t::text LIKE %s',  # noqa: S608
                [f"%{secret}%"],
            )
            assert cursor.fetchone()[0] == 0, table
    event = AuditEvent.objects.get(action="api_key.create")
    assert event.details == {"prefix": key.prefix, "scopes": key.scopes}
    assert event.actor_id == admin.user.pk


@pytest.mark.django_db
def test_the_ui_validates_name_scopes_and_expiry(staff_client):
    admin = staff_client("Admin")
    past = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = admin.post(reverse("api_keys"), {"name": " ", "scopes": [], "expires_at": past})
    page = response.content.decode()
    assert "This field is required." in page
    assert "The expiry must be in the future." in page
    response = admin.post(reverse("api_keys"), {"name": "X", "scopes": ["root:everything"]})
    assert "Select a valid choice" in response.content.decode()
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_the_ui_revokes_a_key_and_it_stops_working(staff_client, client, issue):
    issued = issue()
    assert client.get("/api/v1/me/", **bearer(issued.secret)).status_code == 200
    admin = staff_client("Admin")
    response = admin.post(reverse("api_key_revoke", args=[issued.key.uuid]), follow=True)
    assert f"API key {issued.key.prefix}… revoked." in response.content.decode()
    issued.key.refresh_from_db()
    assert issued.key.revoked_at is not None
    assert "revoked" in admin.get(reverse("api_keys")).content.decode()
    assert client.get("/api/v1/me/", **bearer(issued.secret)).status_code == 401
    assert AuditEvent.objects.filter(action="api_key.revoke", actor_id=admin.user.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["Marketer", "PHI Marketer", "Compliance Officer", "Viewer"])
def test_only_admins_manage_keys(staff_client, issue, role):
    issued = issue()
    other = staff_client(role)
    assert other.get(reverse("api_keys")).status_code == 403
    assert other.post(reverse("api_keys"), {"name": "x", "scopes": ["phi:read"]}).status_code == 403
    assert other.post(reverse("api_key_revoke", args=[issued.key.uuid])).status_code == 403
    issued.key.refresh_from_db()
    assert issued.key.revoked_at is None and ApiKey.objects.count() == 1


# --- authentication, scopes, audit ----------------------------------------------------


@pytest.mark.django_db
def test_any_key_may_ask_who_it_is_and_every_use_is_audited(client, issue):
    issued = issue(scopes=["reports:read"])
    assert issued.key.last_used_at is None
    response = client.get("/api/v1/me/", **bearer(issued.secret))
    assert response.status_code == 200
    assert response.json() == {
        "principal": f"api-key:{issued.key.prefix}",
        "scopes": ["reports:read"],
    }
    issued.key.refresh_from_db()
    first_use = issued.key.last_used_at
    assert first_use is not None
    client.get("/api/v1/me/", **bearer(issued.secret))
    issued.key.refresh_from_db()
    assert issued.key.last_used_at >= first_use
    uses = AuditEvent.objects.filter(action="api_key.use", target_id=str(issued.key.uuid))
    assert uses.count() == 2
    assert uses.first().details == {"method": "GET", "path": "/api/v1/me/"}
    assert uses.first().actor_label == f"api-key:{issued.key.prefix}"


@pytest.mark.django_db
def test_scopes_are_enforced(issue):
    reader = issue(scopes=["phi:read"])
    assert call_scoped("get", key=reader.secret).status_code == 200
    denied = call_scoped("post", key=reader.secret)
    assert denied.status_code == 403
    assert "webhooks:manage" in str(denied.data["detail"])
    manager = issue(scopes=["webhooks:manage", "contacts:read"])
    assert call_scoped("post", key=manager.secret).status_code == 200
    assert call_scoped("get", key=manager.secret).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize(
    "make_bad",
    [
        pytest.param(lambda issued: issued.secret[:-2] + "xx", id="wrong-secret"),
        pytest.param(lambda issued: "lmk_ffffffff_" + "a" * 43, id="unknown-prefix"),
        pytest.param(lambda issued: "not-a-luxmail-key", id="garbage"),
    ],
)
def test_wrong_keys_are_refused_and_audited(client, issue, make_bad):
    issued = issue()
    response = client.get("/api/v1/me/", **bearer(make_bad(issued)))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert AuditEvent.objects.filter(action="api_key.denied").count() == 1
    assert not AuditEvent.objects.filter(action="api_key.use").exists()
    issued.key.refresh_from_db()
    assert issued.key.last_used_at is None


@pytest.mark.django_db
def test_revoked_and_expired_keys_are_refused(client, issue):
    revoked = issue()
    services.api_key_revoke(key=revoked.key, actor=None)
    expiring = issue(expires_at=timezone.now() + timedelta(hours=1))
    assert client.get("/api/v1/me/", **bearer(expiring.secret)).status_code == 200
    ApiKey.objects.filter(pk=expiring.key.pk).update(expires_at=timezone.now())
    for issued in (revoked, expiring):
        response = client.get("/api/v1/me/", **bearer(issued.secret))
        assert response.status_code == 401
        assert "Invalid, expired or revoked" in response.json()["detail"]
    denials = AuditEvent.objects.filter(action="api_key.denied")
    assert denials.count() == 2
    assert {e.actor_label for e in denials} == {
        f"api-key:{revoked.key.prefix}",
        f"api-key:{expiring.key.prefix}",
    }


@pytest.mark.django_db
def test_unknown_scopes_cannot_be_issued(db):
    with pytest.raises(ValueError, match="Unknown scope"):
        services.api_key_create(name="x", scopes=["phi:everything"], actor=None)
    with pytest.raises(ValueError, match="name"):
        services.api_key_create(name="  ", scopes=["phi:read"], actor=None)


# --- the API from a browser session ----------------------------------------------------


@pytest.mark.django_db
def test_session_api_needs_a_verified_session(client, make_user):
    user = make_user("Admin")
    client.post(
        reverse("accounts:login"), {"username": user.username, "password": user.test_password}
    )
    response = client.get("/api/v1/me/")
    assert response.status_code in (401, 403)
    assert "second sign-in factor" in response.json()["detail"]


@pytest.mark.django_db
def test_session_scopes_come_from_role_permissions(staff_client):
    scopes = {}
    for role in ("Admin", "Marketer", "PHI Marketer", "Viewer"):
        client = staff_client(role)
        response = client.get("/api/v1/me/")
        assert response.status_code == 200
        scopes[role] = set(response.json()["scopes"])
        assert scopes[role] == scopes_for_user(client.user)
    assert "phi:read" in scopes["Admin"] and "phi:read" in scopes["PHI Marketer"]
    assert "phi:read" not in scopes["Marketer"] and "phi:read" not in scopes["Viewer"]
    assert "webhooks:manage" in scopes["Admin"]
    assert "webhooks:manage" not in scopes["Marketer"]
    assert scopes["Viewer"] <= scopes["Marketer"] <= scopes["PHI Marketer"] <= set(SCOPES)


@pytest.mark.django_db
def test_session_scopes_are_enforced_too(make_user):
    marketer = make_user("Marketer")
    assert call_scoped("get", user=marketer).status_code == 403
    assert call_scoped("get", user=make_user("PHI Marketer")).status_code == 200
    assert call_scoped("post", user=make_user("PHI Marketer")).status_code == 403
    assert call_scoped("post", user=make_user("Admin")).status_code == 200


@pytest.mark.django_db
def test_deactivated_users_lose_the_session_api(staff_client):
    client = staff_client("Admin")
    assert client.get("/api/v1/me/").status_code == 200
    client.user.is_active = False
    client.user.save()
    assert scopes_for_user(client.user) == set()
    assert client.get("/api/v1/me/").status_code in (401, 403)


@pytest.mark.django_db
def test_schema_documents_both_authentication_schemes(staff_client, issue):
    client = staff_client("Viewer")
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schemes = response.json()["components"]["securitySchemes"]
    assert schemes["apiKey"]["scheme"] == "bearer"
    assert schemes["verifiedSession"]["in"] == "cookie"
    # The schema is for staff and integrations, not the public.
    from django.test import Client

    assert Client().get("/api/schema/").status_code in (401, 403)
    assert Client().get("/api/schema/", **bearer(issue().secret)).status_code == 200
