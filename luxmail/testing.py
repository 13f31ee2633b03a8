"""Pytest plugin shared by every app's tests (loaded with ``-p luxmail.testing``).

Real components are used whenever this machine has them (DESIGN.md, brief §2). A test
that needs one calls :func:`require`; without the component the test is skipped with
a visible reason, except under ``LUXMAIL_REQUIRE_SERVICES=1`` (CI), where every skip
becomes a failure.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

# Importing the ``luxmail`` package (for this plugin) runs the Celery module, which
# defaults DJANGO_SETTINGS_MODULE to the production settings; the suite needs its own.
os.environ["DJANGO_SETTINGS_MODULE"] = "luxmail.test_settings"
os.environ["LUXMAIL_ENV"] = "test"

REQUIRE_SERVICES = os.environ.get("LUXMAIL_REQUIRE_SERVICES", "") in {"1", "true", "yes"}
ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "var" / "screenshots"


# --- Redis: a throwaway server of our own -----------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the server gets SIGKILL when the test process dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class RedisServer:
    """A real ``redis-server`` on a free loopback port, with its files in ``directory``.

    ``options`` are ``redis-server`` command-line options (``appendonly="yes"``).
    :meth:`kill` (SIGKILL) and :meth:`start` again on the same directory model a crash
    and a restart: what the server reloads is what it had persisted.
    """

    def __init__(self, directory: Path, **options: str):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.options = {"save": "", "appendonly": "no", **options}
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 10.0) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += [
            "--dir",
            str(self.directory),
            "--daemonize",
            "no",
            "--logfile",
            str(self.directory / "redis.log"),
        ]
        for name, value in self.options.items():
            args += [f"--{name.replace('_', '-')}", *(value.split() or [""])]
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent
        )
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = self.directory / "redis.log"
                detail = log.read_text()[-2000:] if log.exists() else ""
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}: {detail}")
            time.sleep(0.02)
        return self

    def _ready(self) -> bool:
        """Answers PING (a server still loading its AOF answers -LOADING)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final fsync (a crash)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


# The suite's own Redis: started before Django reads its settings, unless
# LUXMAIL_REDIS_URL names one explicitly. Its databases are ours to flush; an explicitly
# named Redis is never flushed (see owns_redis). Stopped at the end of the session.
#
# Every pytest process starts its own: under pytest-xdist each worker (gw0, gw1, …) is a
# process of its own, so workers never share a Redis (keys, flushes, broker queues,
# CONFIG). A worker inherits the controller's environment, LUXMAIL_REDIS_URL included;
# PLUGIN_REDIS_ENV says which URL a parent pytest's plugin set (not a person), so the
# worker knows to start its own instead of reusing its parent's.
SESSION_REDIS: RedisServer | None = None
_SESSION_REDIS_DIR: str | None = None
PLUGIN_REDIS_ENV = "LUXMAIL_TEST_PLUGIN_REDIS_URL"
# The same for LUXMAIL_VAR_DIR (uploads, media, tracking spool, Celery files): a
# directory of this process's own, removed at the end, unless named explicitly.
PLUGIN_VAR_DIR_ENV = "LUXMAIL_TEST_PLUGIN_VAR_DIR"
_SESSION_VAR_DIR: str | None = None


def worker_id() -> str:
    """``gw0``, ``gw1``… in a pytest-xdist worker, ``main`` otherwise."""
    return os.environ.get("PYTEST_XDIST_WORKER") or "main"


def _named_explicitly(variable: str, marker: str) -> bool:
    value = os.environ.get(variable)
    return bool(value) and value != os.environ.get(marker)


def _start_session_var_dir() -> None:
    global _SESSION_VAR_DIR
    if _named_explicitly("LUXMAIL_VAR_DIR", PLUGIN_VAR_DIR_ENV):
        return
    _SESSION_VAR_DIR = tempfile.mkdtemp(prefix=f"luxmail-test-var-{worker_id()}-")
    os.environ["LUXMAIL_VAR_DIR"] = os.environ[PLUGIN_VAR_DIR_ENV] = _SESSION_VAR_DIR
    atexit.register(_stop_session_var_dir)


def _stop_session_var_dir() -> None:
    global _SESSION_VAR_DIR
    if _SESSION_VAR_DIR:
        shutil.rmtree(_SESSION_VAR_DIR, ignore_errors=True)
        _SESSION_VAR_DIR = None


def _start_session_redis() -> None:
    global SESSION_REDIS, _SESSION_REDIS_DIR
    if _named_explicitly("LUXMAIL_REDIS_URL", PLUGIN_REDIS_ENV):
        return
    os.environ.pop("LUXMAIL_REDIS_URL", None)  # a parent pytest's server: not ours
    if shutil.which("redis-server") is None:
        if REQUIRE_SERVICES:
            raise pytest.UsageError(
                "LUXMAIL_REQUIRE_SERVICES=1 but redis-server is not installed and "
                "LUXMAIL_REDIS_URL is not set: install redis-server (the suite starts its "
                "own throwaway server) or name a Redis database the suite may use."
            )
        return
    _SESSION_REDIS_DIR = tempfile.mkdtemp(prefix=f"luxmail-test-redis-{worker_id()}-")
    SESSION_REDIS = RedisServer(Path(_SESSION_REDIS_DIR)).start()
    os.environ["LUXMAIL_REDIS_URL"] = os.environ[PLUGIN_REDIS_ENV] = SESSION_REDIS.url(0)
    atexit.register(_stop_session_redis)


def _stop_session_redis() -> None:
    global SESSION_REDIS
    if SESSION_REDIS is not None:
        SESSION_REDIS.stop()
        SESSION_REDIS = None
    if _SESSION_REDIS_DIR:
        shutil.rmtree(_SESSION_REDIS_DIR, ignore_errors=True)


def owns_redis(url: str | None) -> bool:
    """Whether ``url`` is on the throwaway server this run started (free to flush)."""
    return bool(url) and SESSION_REDIS is not None and f":{SESSION_REDIS.port}/" in str(url)


def redis_answers(url: str | None) -> bool:
    """Whether the Redis at ``url`` answers (False without a URL)."""
    if not url:
        return False
    parts = urlsplit(url)
    return answers(parts.hostname or "127.0.0.1", parts.port or 6379)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> Iterator[None]:
    """Before pytest-django (whose own hook here reads the Django settings)."""
    _start_session_var_dir()
    _start_session_redis()
    return (yield)


def pytest_unconfigure(config: pytest.Config) -> None:
    _stop_session_redis()
    _stop_session_var_dir()


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say which real services this run uses (CI's log then shows PostgreSQL and Redis)."""
    # pytest plugin: imported before Django's settings are configured
    from django.conf import settings

    database = settings.DATABASES["default"]
    where = f" at {database.get('HOST') or 'socket'}:{database.get('PORT') or 'default'}"
    engine = database["ENGINE"].rsplit(".", 1)[-1]
    redis = _without_credentials(settings.REDIS_URL) or "not used"
    if config.getoption("numprocesses", None) and SESSION_REDIS is not None:
        # The controller's own server only serves its settings; workers start theirs.
        redis = "a throwaway redis-server per xdist worker"
    return [
        f"luxmail: database {engine}{where if engine != 'sqlite3' else ''}, "
        f"redis {redis}, celery broker "
        f"{(settings.CELERY_BROKER_URL or 'none').split('://', 1)[0]}, "
        f"LUXMAIL_REQUIRE_SERVICES={'1' if REQUIRE_SERVICES else '0'}"
    ]


def _without_credentials(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port}{parts.path}"


def require(available: bool, reason: str) -> None:
    """Skip (or, in CI, fail) the current test unless ``available``."""
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} — required because LUXMAIL_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(reason)


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome: Any = yield
    report = outcome.get_result()
    if REQUIRE_SERVICES and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"Skipped under LUXMAIL_REQUIRE_SERVICES=1 (CI forbids skips): {reason}"


@pytest.fixture(scope="session", autouse=True)
def _close_stray_connections(request: pytest.FixtureRequest) -> Iterator[None]:
    """Let pytest-django drop the test database at the end of the run.

    Threads (live_server, concurrency tests) and subprocesses (Celery workers) can leave
    sessions open on the test database; PostgreSQL then refuses to drop it. This runs
    its teardown before django_db_setup's (fixtures tear down in reverse order).
    """
    # pytest plugin: imported before Django's settings are configured
    from django.db import connection

    configured_name = connection.settings_dict["NAME"]
    request.getfixturevalue("django_db_setup")
    # django_db_setup points the connection at the test database it created.
    test_name = connection.settings_dict["NAME"]
    yield

    blocker = request.getfixturevalue("django_db_blocker")
    with blocker.unblock():
        keep = request.config.getoption("reuse_db", default=False)
        created = test_name != configured_name
        if connection.vendor == "postgresql" and created and not keep:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                own_pid = cursor.fetchone()[0]
            # From the maintenance database (PostgreSQL cannot refuse connections to the
            # database a session is in): refuse new sessions first — a thread that
            # reconnects at once would still block the drop — then end the others.
            with connection._nodb_cursor() as cursor:
                cursor.execute(
                    f"ALTER DATABASE {connection.ops.quote_name(test_name)} "
                    "WITH ALLOW_CONNECTIONS false"
                )
                # pg_terminate_backend only signals: wait until the sessions are gone.
                for _ in range(50):
                    cursor.execute(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> %s",
                        [test_name, own_pid],
                    )
                    if not cursor.fetchone()[0]:
                        break
                    time.sleep(0.1)


# --- users and clients -----------------------------------------------------------------


@pytest.fixture
def make_user(db: Any) -> Callable[..., Any]:
    """Create a staff user in ``role`` (a group name), with a confirmed TOTP device."""
    # pytest plugin: imported before Django's settings are configured
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from luxmail import roles

    counter = iter(range(1, 10_000))

    def factory(
        role: str | None = roles.ADMIN,
        *,
        username: str | None = None,
        password: str = "correct horse battery staple",  # noqa: S107,
        totp: bool = True,
        **extra: Any,
    ) -> Any:
        user_model = get_user_model()
        name = username or f"user{next(counter)}"
        user = user_model.objects.create_user(
            username=name,
            password=password,
            email=f"{name}@staff.example",
            is_staff=role in (roles.ADMIN, roles.COMPLIANCE_OFFICER),
            **extra,
        )
        if role:
            roles.sync_roles()
            user.groups.add(Group.objects.get(name=role))
        if totp:
            TOTPDevice.objects.create(user=user, name="test", confirmed=True)
        user.test_password = password  # type: ignore[attr-defined]
        return user

    return factory


def verify_session(client: Any, user: Any) -> None:
    """Sign ``client`` in as ``user`` with a session verified by the user's TOTP device."""
    # pytest plugin: imported before Django's settings are configured
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client.force_login(user)
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    assert device is not None, "verify_session needs a user with a confirmed TOTP device"
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()


@pytest.fixture
def staff_client(client: Any, make_user: Callable[..., Any]) -> Callable[..., Any]:
    """``staff_client(role)`` → a Django test client with a verified session in that role."""

    def factory(role: str = "Admin", **kwargs: Any) -> Any:
        # pytest plugin: imported before Django's settings are configured
        from django.test import Client

        new_client = Client()
        user = make_user(role, **kwargs)
        verify_session(new_client, user)
        new_client.user = user  # type: ignore[attr-defined]
        return new_client

    return factory


# --- browser ---------------------------------------------------------------------------


class _SessionBrowser:
    """One Playwright driver and one headless Chromium per pytest process (xdist worker).

    Launching Chromium (and Playwright's driver) costs seconds of CPU; each browser test
    used to pay it. The browser is shared, the state is not: every test gets a new
    browser context (its own cookies, storage, cache), and every context a test opened is
    closed after it (:func:`browser_page`).
    """

    def __init__(self) -> None:
        self.manager: Any = None
        self.playwright: Any = None
        self.browser: Any = None

    def get(self, executable: str) -> Any:
        # optional: only browser tests need Playwright
        from playwright.sync_api import sync_playwright

        if self.browser is not None and self.browser.is_connected():
            return self.browser
        self.stop()  # never started, or the browser died: a new driver and browser
        asyncio._set_running_loop(None)
        self.manager = sync_playwright()
        self.playwright = self.manager.start()
        self.browser = self.playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        return self.browser

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            if self.browser is not None:
                self.browser.close()
        with contextlib.suppress(Exception):
            if self.manager is not None:
                self.manager.__exit__()
        self.manager = self.playwright = self.browser = None


@pytest.fixture(scope="session")
def _session_browser() -> Iterator[_SessionBrowser]:
    holder = _SessionBrowser()
    try:
        yield holder
    finally:
        # Playwright's loop must look like it is running for its own calls (see below).
        loop = getattr(holder.manager, "_loop", None)
        if loop is not None and not loop.is_closed():
            asyncio._set_running_loop(loop)
        holder.stop()
        asyncio._set_running_loop(None)


@pytest.fixture
def browser_page(live_server: Any, _session_browser: _SessionBrowser) -> Iterator[Any]:
    """A Playwright page in headless Debian Chromium, pointed at ``live_server``.

    The Chromium process is shared by the tests of this process; the page lives in a
    fresh browser context, and all contexts are closed after the test.
    """
    executable = chromium_path()
    require(executable is not None, "Chromium is not installed (apt-get install chromium)")
    try:
        # optional: only browser tests need Playwright
        import playwright.sync_api  # noqa: F401
    except ImportError:  # pragma: no cover - a dev dependency
        require(False, "Playwright is not installed")
        raise
    # Playwright's sync API marks its event loop as running in this thread between its
    # calls (and needs it so); the ORM calls a test makes around it are still synchronous
    # and safe. Other tests must not see that loop: it is unmarked after each browser
    # test and marked again before the next one.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    loop = getattr(_session_browser.manager, "_loop", None)
    if loop is not None and not loop.is_closed():
        asyncio._set_running_loop(loop)
    try:
        browser = _session_browser.get(executable)  # type: ignore[arg-type]
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": 1280, "height": 900}
        )
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
    finally:
        try:
            if _session_browser.browser is not None:
                for opened in list(_session_browser.browser.contexts):
                    with contextlib.suppress(Exception):
                        opened.close()
        finally:
            asyncio._set_running_loop(None)
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def screenshot(page: Any, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Any, user: Any, path: str = "/") -> None:
    """Sign ``user`` (from ``make_user``) in through the real login and TOTP pages,
    starting at ``path``, and wait until the browser is back on it."""
    # pytest plugin: imported before Django's settings are configured
    import pyotp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    page.goto(path)
    page.wait_for_url("**/accounts/login/**")
    page.fill("#id_username", user.username)
    page.fill("#id_password", user.test_password)
    page.click("form:has(#id_password) button[type=submit]")
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    page.fill("#id_token", pyotp.TOTP(base64.b32encode(device.bin_key).decode()).now())
    page.click("form:has(#id_token) button[type=submit]")
    page.wait_for_url(f"**{path}")


@pytest.fixture(autouse=True)
def _audit_checkpoint_dir(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[None]:
    """Each test gets its own audit checkpoint directory: a checkpoint written against
    one test's (rolled back) audit rows must not judge the next test's."""
    # pytest plugin: imported before Django's settings are configured
    from django.conf import settings

    previous = settings.LUXMAIL_AUDIT_CHECKPOINT_DIR
    settings.LUXMAIL_AUDIT_CHECKPOINT_DIR = tmp_path_factory.mktemp("audit-checkpoints")
    yield
    settings.LUXMAIL_AUDIT_CHECKPOINT_DIR = previous
