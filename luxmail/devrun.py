"""Start the ``Procfile`` processes for ``make run`` with honcho.

This is ``honcho start -f Procfile`` with one difference: honcho gives processes five
seconds after Ctrl-C before it kills them, and a Celery worker on the file-system
broker needs about six for a warm shutdown (its polling loop finishes a two-second
drain twice before it stops). Killing it would drop the task it is running, so the
grace period here is longer.
"""

from __future__ import annotations

import sys

from honcho import manager
from honcho.command import main

SHUTDOWN_GRACE_SECONDS = 20

if __name__ == "__main__":
    manager.KILL_WAIT = SHUTDOWN_GRACE_SECONDS
    sys.argv = ["honcho", "start", "-f", "Procfile", *sys.argv[1:]]
    main()
