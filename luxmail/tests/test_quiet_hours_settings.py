"""The organization's local-time settings (issue #19 item 6): the default zone for
contacts without one offers only IANA zones, and quiet hours are hours of the day."""

from __future__ import annotations

import pytest
from django.urls import reverse

from luxmail import org
from luxmail.forms import OrgSettingsForm

pytestmark = pytest.mark.django_db


def _data(**changes):
    current = org.get_settings()
    data = {}
    for name in OrgSettingsForm.Meta.fields:
        value = changes.get(name, getattr(current, name))
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        else:
            data[name] = value
    return data


def test_default_zone_and_quiet_hours_are_saved_and_audited(staff_client):
    client = staff_client("Admin")
    page = client.get(reverse("settings"))
    assert 'name="contact_default_time_zone"' in page.content.decode()
    assert '<option value="Europe/Berlin"' in page.content.decode()
    response = client.post(
        reverse("settings"),
        _data(contact_default_time_zone="Europe/Berlin", quiet_hours_start=20, quiet_hours_end=7),
    )
    assert response.status_code == 302
    saved = org.get_settings()
    assert (saved.contact_default_time_zone, saved.quiet_hours_start, saved.quiet_hours_end) == (
        "Europe/Berlin",
        20,
        7,
    )
    # Shown again as the chosen zone.
    assert 'value="Europe/Berlin" selected' in client.get(reverse("settings")).content.decode()


@pytest.mark.parametrize(
    "changes",
    [
        {"contact_default_time_zone": "Mars/Olympus_Mons"},
        {"contact_default_time_zone": "../../etc/passwd"},
        {"contact_default_time_zone": "A" * 10_000},
        {"quiet_hours_start": 24},
        {"quiet_hours_end": -1},
        {"quiet_hours_end": "nine"},
    ],
)
def test_hostile_values_are_refused_with_a_message(staff_client, changes):
    client = staff_client("Admin")
    before = org.get_settings().quiet_hours_start
    response = client.post(reverse("settings"), _data(**changes))
    assert response.status_code == 200
    assert (
        'class="error"' in response.content.decode() or "form-errors" in response.content.decode()
    )
    saved = org.get_settings()
    assert saved.contact_default_time_zone == "" and saved.quiet_hours_start == before
