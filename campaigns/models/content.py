"""Content: e-mail templates (rendering lives in ``campaigns/content/templating.py``)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class EmailTemplate(models.Model):
    """A campaign template: Jinja2 subject, HTML and optional text (content/templating.py)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200, unique=True)
    subject = models.CharField(max_length=998)
    html = models.TextField()
    text = models.TextField(
        blank=True, help_text="Plain-text part; generated from the HTML when left empty."
    )
    phi_bearing = models.BooleanField(
        default=False, editable=False, help_text="Uses phi.* fields (set on save)."
    )
    uses_unsubscribe = models.BooleanField(default=False, editable=False)
    has_locked_footer = models.BooleanField(
        default=False,
        editable=False,
        help_text="Carries the organization's locked footer block (set on save); only such "
        "templates can be used for new marketing campaigns.",
    )
    editor_project = models.JSONField(
        null=True,
        blank=True,
        editable=False,
        help_text="The visual editor's project (components and styles) the HTML was "
        "exported from; empty for templates written as code.",
    )
    version = models.PositiveIntegerField(default=1, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class EditorBlock(models.Model):
    """A reusable block of template HTML saved from the visual editor, shared by the
    organization's editors (the editor's block panel lists them)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=80, unique=True)
    html = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
