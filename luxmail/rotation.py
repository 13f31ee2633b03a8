"""Key rotation: re-encrypt every ``EncryptedField`` value under the primary key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TextIO

from django.apps import apps
from django.db import models, transaction
from tqdm import tqdm

from luxmail import audit, crypto


@dataclass
class RotationReport:
    primary_id: str
    models: int = 0
    rows: int = 0
    rewritten: int = 0
    already_current: int = 0


def _encrypted_models() -> list[tuple[type[models.Model], list[crypto.EncryptedField]]]:
    found = []
    for model in apps.get_models():
        fields = crypto.encrypted_fields(model)
        if fields:
            found.append((model, fields))
    return found


def _rotate_model(
    model: type[models.Model],
    fields: list[crypto.EncryptedField],
    *,
    batch_size: int,
    report: RotationReport,
    bar: Any,
) -> None:
    names = [f.attname for f in fields]
    primary = report.primary_id
    last_pk: Any = None
    while True:
        with transaction.atomic():
            qs = model._default_manager.order_by("pk")
            if last_pk is not None:
                qs = qs.filter(pk__gt=last_pk)
            rows = list(qs.select_for_update().only("pk", "uuid", *names)[:batch_size])
            if not rows:
                return
            changed = []
            for row in rows:
                dirty = False
                for field in fields:
                    envelope = getattr(row, field.attname)
                    if envelope is None:
                        continue
                    if crypto.envelope_key_id(envelope) == primary:
                        report.already_current += 1
                        continue
                    aad = crypto.field_aad(model, field.name, row.uuid)  # type: ignore[attr-defined]
                    setattr(row, field.attname, crypto.reencrypt(envelope, aad))
                    report.rewritten += 1
                    dirty = True
                if dirty:
                    changed.append(row)
            if changed:
                model._default_manager.bulk_update(changed, names, batch_size=batch_size)
            report.rows += len(rows)
            last_pk = rows[-1].pk
        bar.update(len(rows))


def rotate_all(
    *, batch_size: int = 500, progress: bool = True, stream: TextIO | None = None
) -> RotationReport:
    """Re-encrypt all values not under the primary key; commits per batch (resumable).

    Raises ``crypto.CryptoError`` on a value that does not decrypt (tampered, or its key
    is missing from the ring); batches committed before it stay rotated.
    """
    report = RotationReport(primary_id=crypto.keyring().primary_id)
    targets = _encrypted_models()
    total = sum(model._default_manager.count() for model, _ in targets)
    with tqdm(
        total=total, unit="row", disable=not progress, file=stream, desc="Re-encrypting"
    ) as bar:
        for model, fields in targets:
            report.models += 1
            _rotate_model(model, fields, batch_size=batch_size, report=report, bar=bar)
    audit.record(
        "crypto.rotate",
        details={
            "primary_key_id": report.primary_id,
            "rewritten": report.rewritten,
            "rows": report.rows,
        },
    )
    return report
