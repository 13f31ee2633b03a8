from __future__ import annotations

from typing import Any

from django import forms

from contacts.models import EncryptionKeyKind

MAX_UPLOAD_BYTES = 256 * 1024


class KeyUploadForm(forms.Form):
    kind = forms.ChoiceField(
        choices=EncryptionKeyKind.choices,
        widget=forms.RadioSelect,
        label="What are you adding?",
    )
    pasted = forms.CharField(
        required=False,
        label="Paste it",
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false", "autocomplete": "off"}),
        help_text="The whole block, from the BEGIN line to the END line.",
    )
    upload = forms.FileField(
        required=False,
        label="Or upload the file",
        help_text="A .asc/.pgp key, or a .pem/.crt/.cer/.der/.p7b certificate (256 KB at most).",
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        pasted = (cleaned.get("pasted") or "").strip()
        upload = cleaned.get("upload")
        if pasted and upload:
            raise forms.ValidationError("Paste the key or upload a file, not both.")
        if upload is not None:
            if upload.size > MAX_UPLOAD_BYTES:
                raise forms.ValidationError("The file is larger than 256 KB; it is not a key.")
            cleaned["data"] = upload.read()
        elif pasted:
            cleaned["data"] = pasted
        else:
            raise forms.ValidationError("Paste the key or certificate, or upload its file.")
        return cleaned
