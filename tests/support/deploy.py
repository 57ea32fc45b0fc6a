"""A Heroku-style deploy in tests: the Procfile's commands run as real processes with the
environment a host would give them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


def procfile() -> dict[str, str]:
    """Process type -> command, as the host reads the Procfile."""
    lines = (ROOT / "Procfile").read_text().splitlines()
    return {name.strip(): command.strip() for name, command in (line.split(":", 1) for line in lines if line.strip())}


def production_env(database_url: str, **extra: str) -> dict[str, str]:
    """What a deployer sets on the host (README's deploy section)."""
    return {
        "EDUTRADEX_ENV": "production",
        "SECRET_KEY": "a-long-random-production-secret-0123456789",
        "KYC_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "PAYMENTS_PROVIDER": "demo",
        "DATABASE_URL": database_url,
        "FLASK_APP": "edutradex:create_app",
        **extra,
    }


def run_release(env: dict[str, str]) -> subprocess.CompletedProcess:
    """The `release` command, through a shell as the host runs it (this virtualenv's
    `flask` first on the PATH)."""
    path = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)])
    result = subprocess.run(["sh", "-c", procfile()["release"]], cwd=ROOT, env={**env, "PATH": path}, capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, f"release failed:\n{result.stdout}\n{result.stderr}"
    return result
