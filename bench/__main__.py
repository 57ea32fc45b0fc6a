"""Run every benchmark module in bench/ in turn (bounded, loopback only)."""

import pkgutil
import runpy
import sys
from pathlib import Path

here = Path(__file__).parent
names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))
selected = sys.argv[1:] or names
for name in selected:
    print(f"\n=== bench.{name} ===", flush=True)
    runpy.run_module(f"bench.{name}", run_name="__main__")
