"""Admin: every contacts model registered, PHI masked, search only through the blind index."""

import pytest
from django.contrib import admin
from django.urls import reverse

from contacts import services
from contacts.models import Contact
from luxmail import roles

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def patient(admin):
    return services.contact_create(
        data={"email": "Quincy.Adams@example.org", "first_name": "Quincy", "conditions": "E11.9"},
        actor=admin,
    )


def test_every_contacts_model_is_registered():
    from contacts import models

    for model in [
        models.Contact,
        models.ContactProfile,
        models.ContactTokenSet,
        models.CustomField,
        models.Consent,
        models.Suppression,
        models.ContactList,
        models.ListMembership,
        models.Segment,
    ]:
        assert admin.site.is_registered(model), model


def test_admin_pages_mask_phi_and_search_by_blind_index(staff_client, patient):
    client = staff_client(roles.ADMIN, is_superuser=True)
    for model in [
        "contact",
        "contactprofile",
        "contacttokenset",
        "consent",
        "suppression",
        "contactlist",
        "listmembership",
        "segment",
        "customfield",
    ]:
        response = client.get(reverse(f"admin:contacts_{model}_changelist"))
        assert response.status_code == 200, model
    changelist = reverse("admin:contacts_contact_changelist")
    page = client.get(changelist).content.decode()
    assert "***@example.org" in page
    assert "Quincy" not in page and "quincy" not in page
    detail = client.get(reverse("admin:contacts_contact_change", args=[patient.pk])).content
    assert b"Quincy" not in detail and b"E11.9" not in detail
    found = client.get(changelist, {"q": "QUINCY.ADAMS@example.org"}).content.decode()
    assert f"/{patient.pk}/change/" in found
    assert f"/{patient.pk}/change/" not in client.get(changelist, {"q": "Quincy"}).content.decode()


def test_admin_delete_goes_through_the_audited_service(staff_client, patient):
    from luxmail.models import AuditEvent

    client = staff_client(roles.ADMIN, is_superuser=True)
    response = client.post(
        reverse("admin:contacts_contact_changelist"),
        {"action": "delete_with_audit", "_selected_action": [patient.pk]},
    )
    assert response.status_code == 302
    assert not Contact.objects.exists()
    assert AuditEvent.objects.filter(action="contact.delete").count() == 1
