"""Job functions for the admin's jobs-page tests: module-level, as RQ needs."""


def always_fails(payout_id: int) -> None:
    raise RuntimeError(f"payout provider unreachable for payout {payout_id}")
