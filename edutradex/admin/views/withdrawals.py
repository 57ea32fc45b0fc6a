from .. import bp  # noqa: F401
