"""Security headers on every response. The CSP allows only what the pages use; features
that load a third-party script (Stripe.js) add its origin to CSP_EXTRA_SOURCES."""

from __future__ import annotations

from flask import Flask, request


def content_security_policy(app: Flask) -> str:
    host = request.host
    directives: dict[str, list[str]] = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'", f"ws://{host}", f"wss://{host}"],
        "frame-src": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
    for directive, sources in app.config.get("CSP_EXTRA_SOURCES", {}).items():
        current = directives.setdefault(directive, [])
        if current == ["'none'"]:
            current.clear()
        current.extend(s for s in sources if s not in current)
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def init_app(app: Flask) -> None:
    app.config.setdefault("CSP_EXTRA_SOURCES", {})

    @app.after_request
    def set_security_headers(response):
        response.headers.setdefault("Content-Security-Policy", content_security_policy(app))
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
        response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if app.config.get("SESSION_COOKIE_SECURE"):
            response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        return response
