"""Keep every process's proxy-range index current, whichever path changed a row."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from reporting.models import ProxyRange
from reporting.services import proxy_ranges_changed


@receiver(post_save, sender=ProxyRange, dispatch_uid="reporting.proxy_range_saved")
@receiver(post_delete, sender=ProxyRange, dispatch_uid="reporting.proxy_range_deleted")
def _proxy_range_changed(sender: Any, **kwargs: Any) -> None:
    # Bulk loads bypass signals; proxy_ranges_replace() bumps the version itself.

    proxy_ranges_changed()
