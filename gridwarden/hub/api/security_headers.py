"""Security headers on every response of the hub (console pages, API, evidence, metrics).

* ``Content-Security-Policy``: the console is plain files from its own origin, with no inline
  script or style and no third-party resources, so the policy allows only ``'self'`` and forbids
  framing (``frame-ancestors 'none'``), plugins, ``<base>`` tricks and form posts elsewhere. A
  script injected into a page (say through a camera name that escaped escaping) does not run.
* ``X-Content-Type-Options: nosniff``: an uploaded file is only ever what its type says.
* ``Referrer-Policy: no-referrer``: signed URLs never leak through the Referer header.
* ``X-Frame-Options: DENY``: the same as ``frame-ancestors`` for old browsers.
* ``Cache-Control: no-store`` on every response to an authenticated request (a bearer token, or a
  signed ``ticket`` in the URL) unless the route chose its own caching: a shared control-room
  workstation keeps no case data in its browser cache. (Evidence files by signed URL keep their
  ``private`` caching, so a video can seek without downloading again.)

A pure ASGI middleware: it only adds headers as the response starts, so streaming responses
(the case stream, video ranges) are untouched.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        # blob: only for object URLs the page made itself (the officer app shows the incident
        # photo it fetched with its bearer token, and the photo just taken, as blob: URLs).
        "img-src 'self' blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "manifest-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)
BASE_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


def _authenticated(scope: Scope) -> bool:
    if any(name == b"authorization" for name, _ in scope.get("headers", [])):
        return True
    query: bytes = scope.get("query_string", b"")
    return query.startswith(b"ticket=") or b"&ticket=" in query


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authenticated = _authenticated(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in BASE_HEADERS if name not in present]
                if authenticated and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
