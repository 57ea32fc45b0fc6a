"""The admin's sections, one module each, all on the one admin blueprint."""

from . import audit, competitions, dashboard, jobs, kyc, markets, payouts, settings, users, withdrawals  # noqa: F401
