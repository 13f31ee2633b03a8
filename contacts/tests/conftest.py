import datetime as dt

import pytest
from django.db import connection

from luxmail import roles
from luxmail.testing import require


@pytest.fixture
def admin(make_user):
    return make_user(roles.ADMIN)


@pytest.fixture
def postgres(db):
    require(connection.vendor == "postgresql", "needs PostgreSQL on 127.0.0.1:5432")


TODAY = dt.date(2026, 3, 1)
