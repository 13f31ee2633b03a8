"""djangosaml2's ``SAML_CONFIG`` for LuxMail as a service provider (read by settings.py).

No Django imports: settings.py calls :func:`saml_config` while settings load.
"""

from __future__ import annotations

from typing import Any


def saml_config(
    *, entity_id: str, base_url: str, idp_metadata: str, xmlsec_binary: str
) -> dict[str, Any]:
    """The SP: signed assertions required, POST binding back to ``/saml2/acs/``."""
    # pysaml2 is heavy to import; settings load it only when SAML is configured.
    import saml2
    import saml2.saml

    return {
        "xmlsec_binary": xmlsec_binary,
        "entityid": entity_id,
        "allow_unknown_attributes": True,
        "service": {
            "sp": {
                "name": "LuxMail",
                "endpoints": {
                    "assertion_consumer_service": [
                        (f"{base_url}/saml2/acs/", saml2.BINDING_HTTP_POST),
                    ],
                },
                # Only answers to LuxMail's own requests (InResponseTo is checked).
                "allow_unsolicited": False,
                "authn_requests_signed": False,
                "want_assertions_signed": True,
                "want_response_signed": False,
                "name_id_format": saml2.saml.NAMEID_FORMAT_EMAILADDRESS,
            },
        },
        "metadata": {"local": [idp_metadata]},
    }
