"""FLASK_APP for tests of `flask worker`: edutradex's factory, writing the pid of every
process that builds an app to $APP_BUILDS_FILE. It replaces edutradex.create_app too, so an
app built anywhere else in the process (the @job fallback `rq worker` uses) is counted."""

import os

import edutradex

_create_app = edutradex.create_app


def create_app(*args, **kwargs):
    with open(os.environ["APP_BUILDS_FILE"], "a") as builds:
        builds.write(f"{os.getpid()}\n")
    return _create_app(*args, **kwargs)


edutradex.create_app = create_app
