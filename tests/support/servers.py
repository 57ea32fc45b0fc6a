"""Real servers for tests: a throwaway PostgreSQL cluster and a redis-server, each in a
temporary directory on a free loopback port, stopped at the end of the session."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class ServerUnavailable(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise ServerUnavailable(f"nothing listening on port {port} after {timeout}s")


def _pg_bindir() -> Path | None:
    found = shutil.which("initdb")
    candidates = [found] if found else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate).resolve().parent
    return None


class PostgresServer:
    """initdb + pg_ctl. PostgreSQL refuses to run as root, so as root the cluster belongs
    to the `postgres` system user that Debian's package creates."""

    def __init__(self):
        self.bindir = _pg_bindir()
        if self.bindir is None:
            raise ServerUnavailable("PostgreSQL server binaries (initdb, pg_ctl) not found; apt-get install postgresql")
        self.base = Path(tempfile.mkdtemp(prefix="edutradex-pg-"))
        self.port = free_port()
        self.datadir = self.base / "data"
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            try:
                pg = pwd.getpwnam("postgres")
            except KeyError:
                raise ServerUnavailable("running as root and there is no postgres user to own the cluster") from None
            os.chmod(self.base, 0o755)
            os.chown(self.base, pg.pw_uid, pg.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        result = subprocess.run([*self.prefix, *args], capture_output=True, text=True)
        if result.returncode != 0:
            raise ServerUnavailable(f"{args[0]} failed: {result.stderr or result.stdout}")

    def start(self) -> PostgresServer:
        self._run(str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")
        options = (f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-o", options, "-l",
                  str(self.base / "server.log"), "-w", "-t", "60", "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return self.url(name)

    def stop(self) -> None:
        subprocess.run([*self.prefix, str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


class RedisServer:
    def __init__(self):
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise ServerUnavailable("redis-server not found; apt-get install redis-server")
        self.base = Path(tempfile.mkdtemp(prefix="edutradex-redis-"))
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.base)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(10)
        shutil.rmtree(self.base, ignore_errors=True)
