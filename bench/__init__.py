"""Benchmarks. Each module runs on its own: `.venv/bin/python -m bench.<name>`;
`make bench` (python -m bench) runs them all in turn."""
