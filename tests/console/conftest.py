"""The console in a real browser: Debian's Chromium driven by Playwright (no browser is
downloaded: `executable_path`), against `ledger serve` as a real process on PostgreSQL,
its data made through the API as a client would."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from tests.serverproc import create_key, running_server, server_env

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("LEDGER_SCREENSHOTS") or ROOT / "var" / "screenshots")
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser")


def chromium_path() -> str:
    found = os.environ.get("LEDGER_CHROMIUM") or next(filter(None, map(shutil.which, CHROMIUM_CANDIDATES)), None)
    if found is None:
        pytest.fail("the console's browser tests need Debian's chromium: apt-get install chromium "
                    "(.ci/run installs it), or LEDGER_CHROMIUM=/path/to/chromium")
    return found


@dataclass
class Console:
    base: str  # the server, e.g. http://localhost:8123
    keys: dict[str, str]  # role (or "customer") -> secret
    admin: requests.Session
    env: dict[str, str]  # the server's environment, for the CLI (`ledger send-reminders`)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.admin.request(method, f"{self.base}{path}", timeout=30, **kwargs)
        assert response.status_code < 300, (path, response.status_code, response.text)
        return response.json()


@pytest.fixture(scope="module")
def console(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    schema = "c_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    log = tmp_path_factory.mktemp("console") / "server.log"
    try:
        # Two workers: a session made on one is honoured by the other (one secret for all).
        with running_server(postgres_url, schema, workers=2, log_path=log) as server:
            env = server_env(postgres_url, schema)
            base = server.base.replace("127.0.0.1", "localhost")  # a secure context: Secure cookies work
            admin = requests.Session()
            admin.headers["Authorization"] = f"Bearer {server.admin_key}"
            keys = {role: create_key(env, role) for role in ("finance", "auditor")}
            keys["customer"] = create_key(env, "finance", "acme")
            keys["admin"] = server.admin_key
            yield Console(base, keys, admin, env)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                              args=["--no-sandbox", "--disable-gpu"])
        try:
            yield launched
        finally:
            launched.close()


def log_in(browser: Any, console: Console, who: str, width: int = 1280, height: int = 900) -> Any:
    """A fresh browser context (its own cookies) logged in with ``who``'s key."""
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    page = context.new_page()
    page.goto(f"{console.base}/console/login")
    page.get_by_label("API key").fill(console.keys[who])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    return page


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
