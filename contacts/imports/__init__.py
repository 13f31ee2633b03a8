"""Contact import from CSV and XLSX (issue 3, item 7; docs/architecture.md "Import").

* :mod:`contacts.imports.files` stores the upload under ``LUXMAIL_IMPORT_DIR`` and reads
  it through django-import-export's formats (tablib datasets).
* :mod:`contacts.imports.columns` lists the importable fields, guesses the mapping from
  the headers and turns one file row into an upsert row plus consent instructions.
* :mod:`contacts.imports.services` runs the steps: upload → map → dry-run preview →
  confirm → import (one transaction, Celery, progress), always deleting the file.
* :mod:`contacts.imports.selectors` reads jobs and their live progress.
"""
