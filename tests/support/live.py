"""The app as a real process (wsgi.py under eventlet), for browser and crash tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from .servers import free_port

ROOT = Path(__file__).resolve().parents[2]


class LiveServer:
    def __init__(self, workdir: Path, **env: str):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = self.workdir / "server.log"
        self.env = {
            **os.environ,
            "EDUTRADEX_ENV": "development",
            "DATABASE_URL": f"sqlite:///{self.workdir / 'live.db'}",
            "SECRET_KEY": "live-test-secret-key-0123456789",
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "RATELIMIT_ENABLED": "0",
            "HEALTHZ_TOKEN": "live-test-health-token",
            "MAIL_OUTBOX_DIR": str(self.workdir / "outbox"),
            "FLASK_APP": "edutradex:create_app",
            **env,
        }
        if "REDIS_URL" not in env:
            self.env.pop("REDIS_URL", None)  # the embedded default, whatever the shell has

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def health(self) -> dict:
        """/healthz with its details (the checks), as a monitor with the token sees it."""
        return requests.get(self.url + "/healthz", headers={"X-Healthz-Token": self.env["HEALTHZ_TOKEN"]},
                            timeout=10).json()

    def flask(self, *args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "flask", *args], cwd=ROOT, env=self.env,
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"flask {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def prepare(self) -> LiveServer:
        self.flask("db", "upgrade")
        self.flask("seed", "--no-samples")  # each test makes the competitions it needs
        return self

    def start(self, timeout: float = 30.0) -> LiveServer:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "wsgi.py"], cwd=ROOT, env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            try:
                requests.get(self.url + "/healthz", timeout=1)
                return self
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f"server did not answer in {timeout}s:\n{self.log_path.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no clean-up, as in a crash."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
