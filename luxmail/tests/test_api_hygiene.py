"""API hygiene: rate limits per key and per IP, body limits, RFC 9457 problem details.

Real PostgreSQL and the session's throwaway Redis (the throttles count in the cache)."""

from __future__ import annotations

import json
import logging
import secrets

import pytest
from django.test import Client
from django.urls import include, path
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from luxmail.api import services
from luxmail.api.problems import TYPE_BASE

pytestmark = [pytest.mark.django_db]

PROBLEM = "application/problem+json"
PHI = "Metformin 500mg daily"


class BoomView(APIView):
    """Fails like a bug would, with PHI in the exception text."""

    required_scopes = None

    def get(self, request: Request) -> Response:
        raise RuntimeError(f"patient {PHI} broke it")


class EchoIn(serializers.Serializer):
    code = serializers.CharField()

    def validate_code(self, value: str) -> str:
        raise serializers.ValidationError(f"Unknown code {value}.")


class EchoView(APIView):
    """An app serializer whose own message quotes the value (the handler scrubs it)."""

    required_scopes = None

    def post(self, request: Request) -> Response:
        EchoIn(data=request.data).is_valid(raise_exception=True)
        return Response({})


urlpatterns = [
    path("api/test-boom/", BoomView.as_view()),
    path("api/test-echo/", EchoView.as_view()),
    path("", include("luxmail.urls")),
]


def key_client(scopes=("contacts:read", "contacts:write"), ip="127.0.0.1"):
    issued = services.api_key_create(name="hygiene", scopes=list(scopes), actor=None)
    client = Client(REMOTE_ADDR=ip)
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {issued.secret}"
    return client


def some_ip() -> str:
    """An address no other test uses: the counters live in Redis across tests."""
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


def assert_problem(response, status, kind=None):
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].split(";")[0] == PROBLEM
    body = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    assert body["status"] == status
    assert body["type"].startswith(TYPE_BASE) and body["title"] and body["detail"]
    assert body["instance"] == response.wsgi_request.path
    if kind:
        assert body["type"] == TYPE_BASE + kind
    return body


def until_refused(client, limit=20, **extra):
    """Requests until the first 429; the number that passed before it and the 429."""
    for passed in range(limit):
        response = client.get("/api/v1/me/", **extra)
        if response.status_code == 429:
            return passed, response
    raise AssertionError("never rate limited")


# --- rate limits --------------------------------------------------------------------------


def test_each_api_key_has_its_own_budget(settings):
    settings.LUXMAIL_API_RATE_KEY = "3/h"
    ip = some_ip()
    first, second = key_client(ip=ip), key_client(ip=ip)
    passed, refused = until_refused(first)
    # A fixed window: 3, or up to 6 if the hour turned during the test.
    assert 3 <= passed <= 6
    body = assert_problem(refused, 429, "rate-limited")
    assert int(refused["Retry-After"]) >= 1
    assert refused["Retry-After"] in body["detail"]
    # The other key, from the same address, is untouched.
    assert second.get("/api/v1/me/").status_code == 200


def test_requests_without_valid_credentials_are_limited_per_client_ip(settings):
    settings.LUXMAIL_API_RATE_ANON = "3/h"
    settings.LUXMAIL_API_RATE_KEY = "1000/h"
    ip, other = some_ip(), some_ip()
    anonymous = Client(REMOTE_ADDR=ip)
    assert_problem(anonymous.get("/api/v1/me/"), 401, "not-authenticated")
    # Guessing keys spends the same budget as sending none.
    guessing = Client(REMOTE_ADDR=ip, HTTP_AUTHORIZATION="Bearer lmk_0000_guess")
    assert_problem(guessing.get("/api/v1/me/"), 401)
    passed, refused = until_refused(anonymous)
    assert 1 <= passed <= 4
    assert_problem(refused, 429, "rate-limited")
    assert int(refused["Retry-After"]) >= 1
    # Another address is not affected, nor is a valid key from the refused address.
    assert Client(REMOTE_ADDR=other).get("/api/v1/me/").status_code == 401
    assert key_client(ip=ip).get("/api/v1/me/").status_code == 200


def test_forwarded_for_counts_only_behind_the_configured_proxies(settings):
    settings.LUXMAIL_API_RATE_ANON = "2/h"
    proxy, client_a, client_b = some_ip(), some_ip(), some_ip()
    client = Client(REMOTE_ADDR=proxy)
    # No trusted proxy: X-Forwarded-For is the caller's to forge, so it is ignored.
    settings.AXES_IPWARE_PROXY_COUNT = None
    for _ in range(3):
        client.get("/api/v1/me/", HTTP_X_FORWARDED_FOR=some_ip())
    assert client.get("/api/v1/me/", HTTP_X_FORWARDED_FOR=some_ip()).status_code == 429
    # One trusted proxy: its last entry is the client, whatever the client prepended.
    settings.AXES_IPWARE_PROXY_COUNT = 1
    spoof = f"{some_ip()}, {client_a}"
    passed, _ = until_refused(client, HTTP_X_FORWARDED_FOR=spoof)
    assert 2 <= passed <= 4
    assert client.get("/api/v1/me/", HTTP_X_FORWARDED_FOR=client_b).status_code == 401


# --- body limits ------------------------------------------------------------------------


def test_an_oversized_body_is_refused_with_413_before_parsing(settings):
    settings.LUXMAIL_API_MAX_BODY_BYTES = 1000
    client = key_client()
    body = json.dumps({"email": "big@example.org", "first_name": "x" * 2000})
    response = client.post("/api/v1/contacts/", body, content_type="application/json")
    problem = assert_problem(response, 413, "body-too-large")
    assert problem["max_bytes"] == 1000 and "1,000" in problem["detail"]
    assert "xxxx" not in response.content.decode()
    # An endpoint that takes bigger bodies (bounce reports) says so itself.
    bounces = key_client(scopes=["bounces:write"])
    response = bounces.post(
        "/api/v1/bounces/", json.dumps({"document": "x" * 2000}), content_type="application/json"
    )
    assert response.status_code != 413


def test_djangos_own_upload_limit_is_a_413_problem_not_an_error_page(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = key_client().post(
        "/api/v1/contacts/", {"email": "form@example.org", "first_name": "y" * 500}
    )
    assert_problem(response, 413, "body-too-large")


def test_malformed_json_is_a_400_problem():
    response = key_client().post(
        "/api/v1/contacts/", '{"email": "a@example.org",', content_type="application/json"
    )
    body = assert_problem(response, 400, "malformed-body")
    assert "not valid JSON" in body["detail"]


@pytest.mark.parametrize(
    "payload",
    [
        "[" * 100_000 + "]" * 100_000,  # past Python's recursion limit
        '{"a":' * 200 + "1" + "}" * 200,  # under it, over ours
        json.dumps({f"k{i}": i for i in range(20_000)}),  # too many keys
        json.dumps({"a": [{f"k{i}": i for i in range(100)} for _ in range(200)]}),
        "1" * 5000,  # an integer Python refuses to convert
    ],
    ids=["deep-lists", "deep-objects", "many-keys", "many-nested-keys", "huge-int"],
)
def test_hostile_json_is_a_400_problem(payload):
    response = key_client().post("/api/v1/contacts/", payload, content_type="application/json")
    body = assert_problem(response, 400, "malformed-body")
    assert payload[:40] not in body["detail"]


def test_ordinary_nesting_still_parses():
    response = key_client().post(
        "/api/v1/segments/",
        json.dumps({"name": "Nested", "rules": {"all": [{"any": [{"not": {"all": []}}]}]}}),
        content_type="application/json",
    )
    assert response.status_code in (201, 400)
    assert "malformed-body" not in response.content.decode()


# --- problem details for every error ----------------------------------------------------


def test_each_error_status_is_a_problem_document():
    reader = key_client(scopes=["contacts:read"])
    writer = key_client()
    assert_problem(Client().get("/api/v1/me/"), 401, "not-authenticated")
    forbidden = assert_problem(reader.post("/api/v1/contacts/", {}), 403, "forbidden")
    assert "contacts:write" in forbidden["detail"]
    assert_problem(reader.get("/api/v1/contacts/999999999/"), 404, "not-found")
    assert_problem(reader.get("/api/v1/no-such-endpoint/"), 404, "not-found")
    not_allowed = reader.delete("/api/v1/me/")
    assert_problem(not_allowed, 405, "method-not-allowed")
    assert "GET" in not_allowed["Allow"]
    assert_problem(
        writer.post("/api/v1/contacts/", "email=x", content_type="text/plain"),
        415,
        "unsupported-media-type",
    )
    created = writer.post(
        "/api/v1/contacts/", {"email": "dup@example.org"}, content_type="application/json"
    )
    assert created.status_code == 201
    conflict = writer.post(
        "/api/v1/contacts/", {"email": "dup@example.org"}, content_type="application/json"
    )
    assert_problem(conflict, 409, "conflict")
    # A view's own error body keeps its extension members (here contacts' `errors`).
    invalid = writer.post(
        "/api/v1/contacts/", {"email": "not an address"}, content_type="application/json"
    )
    body = assert_problem(invalid, 400)
    assert body["errors"] and {"field", "message"} <= set(body["errors"][0])
    # 401 keeps its challenge.
    assert Client().get("/api/v1/me/")["WWW-Authenticate"].startswith("Bearer")


def test_serializer_errors_list_fields_and_never_repeat_the_value():
    writer = key_client()
    response = writer.post(
        "/api/v1/contacts/",
        {"email": "phi@example.org", "status": PHI},
        content_type="application/json",
    )
    body = assert_problem(response, 400, "validation")
    assert body["errors"] == [{"field": "status", "message": "Not one of the allowed choices."}]
    assert "status" in body["detail"]
    assert "Metformin" not in response.content.decode()


@pytest.mark.urls(__name__)
def test_an_apps_own_message_quoting_the_value_is_scrubbed():
    response = key_client().post("/api/test-echo/", {"code": PHI}, content_type="application/json")
    body = assert_problem(response, 400, "validation")
    assert body["errors"][0]["field"] == "code"
    assert PHI not in response.content.decode()


@pytest.mark.urls(__name__)
def test_an_unhandled_error_is_a_generic_500_with_a_log_id(caplog):
    client = key_client()
    client.raise_request_exception = False
    with caplog.at_level(logging.ERROR, logger="luxmail.api"):
        response = client.get("/api/test-boom/")
    body = assert_problem(response, 500, "server-error")
    text = response.content.decode()
    assert "Metformin" not in text and "Traceback" not in text and "RuntimeError" not in text
    assert body["error_id"] in body["detail"]
    assert any(body["error_id"] in record.getMessage() for record in caplog.records)


def test_pages_outside_the_api_keep_their_own_errors(client):
    assert client.get("/no-such-page/")["Content-Type"].startswith("text/html")


def test_the_schema_describes_problem_responses():
    response = key_client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["components"]["schemas"]["Problem"]["required"] == [
        "type",
        "title",
        "status",
        "detail",
    ]
    create = schema["paths"]["/api/v1/contacts/"]["post"]["responses"]
    for code in ("400", "401", "403", "413", "415", "429", "500"):
        assert create[code]["content"][PROBLEM]["schema"] == {
            "$ref": "#/components/schemas/Problem"
        }
    assert "413" not in schema["paths"]["/api/v1/me/"]["get"]["responses"]
