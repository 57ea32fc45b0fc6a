"""The admin's service modules. They call the feature services (never re-implement their
rules) and record every action in the audit log in the same transaction."""
