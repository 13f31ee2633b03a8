"""Settings for the pytest suite: the normal settings in ``test`` mode."""

import os

os.environ["LUXMAIL_ENV"] = "test"

from luxmail.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]  # noqa: F405
