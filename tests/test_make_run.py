"""``make run`` end to end: the Procfile processes as ``make run`` starts them.

Runs what the Makefile's ``run`` target runs — ``manage.py migrate``, ``manage.py
demo_setup`` and ``python -m luxmail.devrun`` (honcho over the Procfile) with the
repository's ``.venv`` on PATH and ``LUXMAIL_ENV=dev`` — in a temporary
``LUXMAIL_VAR_DIR`` on free ports, then checks what a person trying LuxMail sees: the
printed sign-in details work, ``/healthz`` answers, a Celery task goes through the
file-system broker to the worker and beat's heartbeat arrives (``/healthz?deep=1``),
mail sent to the sink lands as ``.eml`` and shows in the Outbox, and SIGINT (Ctrl-C)
stops every process.
"""

from __future__ import annotations

import base64
import http.cookiejar
import json
import os
import re
import signal
import smtplib
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage
from pathlib import Path

import pyotp
import pytest

from luxmail.testing import free_port, require

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"

pytestmark = [pytest.mark.slow, pytest.mark.celery, pytest.mark.smtp]


def _dev_env(var_dir: Path, web_port: int, smtp_port: int) -> dict[str, str]:
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LUXMAIL_", "DJANGO_", "CELERY_", "PYTEST_"))
        and k not in {"DATABASE_URL", "SECRET_KEY"}
    }
    keep.update(
        LUXMAIL_ENV="dev",
        LUXMAIL_VAR_DIR=str(var_dir),
        LUXMAIL_WEB_PORT=str(web_port),
        LUXMAIL_SMTP_PORT=str(smtp_port),
        LUXMAIL_BOUNCE_PORT=str(free_port()),
        LUXMAIL_BASE_URL=f"http://localhost:{web_port}",
        LUXMAIL_HEARTBEAT_SECONDS="2",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return keep


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _get(opener, url: str, data: dict[str, str] | None = None, timeout: float = 30):
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    with opener.open(url, data=body, timeout=timeout) as response:
        return response.status, response.geturl(), response.read().decode()


def _wait_for(predicate, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}; process output:\n{log.read_text()[-6000:]}")


def _answer(url: str):
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return None


def _csrf(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "no CSRF token in the form"
    return match.group(1)


def test_make_run_starts_everything_and_ctrl_c_stops_it(tmp_path):
    require((BIN / "honcho").exists(), "the repository's .venv is missing (make install)")
    require(sys.platform.startswith("linux"), "reads /proc to find the child processes")
    web_port, smtp_port = free_port(), free_port()
    var_dir = tmp_path / "var"
    env = _dev_env(var_dir, web_port, smtp_port)
    python = str(BIN / "python")

    subprocess.run(
        [python, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    setup = subprocess.run(
        [python, "manage.py", "demo_setup"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    printed = setup.stdout
    username = re.search(r"Username:\s+(\S+)", printed).group(1)
    password = re.search(r"Password:\s+(\S+)", printed).group(1)
    secret = re.search(r"TOTP secret:\s+([A-Z2-7]+)", printed).group(1)
    assert f"otpauth://totp/LuxMail%3A{username}?secret={secret}" in printed
    assert "█" in printed  # the terminal QR code
    assert f"http://localhost:{web_port}/dev/outbox/" in printed
    base64.b32decode(secret + "=" * (-len(secret) % 8))  # a valid base32 TOTP key
    # A second run prints the same sign-in details (make run is restartable).
    again = subprocess.run(
        [python, "manage.py", "demo_setup"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    assert f"Password:     {password}".encode() in again.stdout

    log = tmp_path / "honcho.log"
    with log.open("wb") as out:
        honcho = subprocess.Popen(
            [python, "-m", "luxmail.devrun"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://localhost:{web_port}"
    try:
        _wait_for(lambda: _answer(f"{base}/healthz") == (200, "ok"), 120, "/healthz", log)

        # broker -> worker -> cache, and beat's heartbeat, all through the file broker.
        def deep_ok():
            answer = _answer(f"{base}/healthz?deep=1")
            return answer if answer and answer[0] == 200 else None

        status, body = _wait_for(deep_ok, 90, "/healthz?deep=1 to report ok", log)
        assert json.loads(body)["checks"] == {
            "database": "ok",
            "cache": "ok",
            "worker": "ok",
            "beat": "ok",
        }
        assert "luxmail.healthcheck" in log.read_text()

        message = EmailMessage()
        message["From"] = "front-desk@clinic.example"
        message["To"] = "someone@patients.example"
        message["Subject"] = "Sink check"
        message.set_content("Hello from the make run test.")
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=15) as smtp:
            smtp.send_message(message)
        mail_dir = var_dir / "mail"
        # The demo's own campaign is in the sink too: find ours among the files.
        stored = _wait_for(
            lambda: [p for p in mail_dir.glob("*.eml") if b"Subject: Sink check" in p.read_bytes()],
            30,
            "the .eml file",
            log,
        )
        assert len(stored) == 1

        # The printed credentials sign in (password, then TOTP) and the Outbox shows it.
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        _, _, login_page = _get(opener, f"{base}/accounts/login/")
        status, url, page = _get(
            opener,
            f"{base}/accounts/login/",
            {"csrfmiddlewaretoken": _csrf(login_page), "username": username, "password": password},
        )
        assert "/accounts/mfa/" in url, page[-2000:]
        status, url, page = _get(
            opener,
            url,
            {"csrfmiddlewaretoken": _csrf(page), "token": pyotp.TOTP(secret).now()},
        )
        assert status == 200 and "/accounts/" not in urllib.parse.urlparse(url).path
        status, _, outbox = _get(opener, f"{base}/dev/outbox/")
        assert status == 200 and "Sink check" in outbox
    finally:
        processes = _descendants(honcho.pid)
        if honcho.poll() is None:
            os.kill(honcho.pid, signal.SIGINT)  # what Ctrl-C does to honcho
        try:
            honcho.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(honcho.pid, signal.SIGKILL)
            honcho.wait()
            pytest.fail(f"honcho did not stop on SIGINT:\n{log.read_text()[-4000:]}")

    output = log.read_text()
    assert len(processes) >= 5, output[-4000:]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in processes):
        time.sleep(0.2)
    assert not [pid for pid in processes if _alive(pid)], "processes survived Ctrl-C"
    for name in ("web", "worker", "beat", "smtp"):
        assert re.search(rf"{name}\.1 +\| ", output), f"{name} never started"
        assert re.search(rf"{name}\.1 stopped", output), f"{name} did not stop"
    # Every process stopped on its own: none had to be killed.
    assert "SIGKILL" not in output, output[-4000:]
