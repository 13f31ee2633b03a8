"""Portal tests reuse the campaigns fixtures: the aiosmtpd relay sink, an Admin, PostgreSQL."""

from campaigns.tests.conftest import admin, postgres, sink  # noqa: F401
