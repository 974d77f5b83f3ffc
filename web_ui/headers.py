"""Security headers on every response (S13), set as the response is prepared, so that
pages, the API, static files, refusals and the WebSocket upgrade all carry them.

The policy allows what the pages do and nothing else:

- scripts and styles from /static (inline styles too: the protocol preview is an
  ``<iframe srcdoc>`` that inherits this policy, and its HTML carries its styles);
- ``'wasm-unsafe-eval'``: pdf.js's image decoders are WebAssembly (``eval`` stays off);
- images and media as ``blob:`` (identity-check images, PDFs fetched with the token)
  and ``data:`` (the empty favicon);
- the pdf.js worker from /static; the signaling socket to this host only;
- no framing of the pages by anyone (``frame-ancestors 'none'``, X-Frame-Options).

A handler that sets its own policy keeps it (the protocol HTML's is stricter).
HSTS goes only on responses served over TLS. ``Server`` names no versions.
"""

from __future__ import annotations

from aiohttp import web

SERVER_NAME = "defense-room"
#: A year: the server has a certificate for as long as it serves defenses.
HSTS_SECONDS = 31_536_000


def content_security_policy(request: web.Request) -> str:
    """The pages' policy; the signaling socket's host is named for older browsers,
    where ``'self'`` does not cover ``ws:``/``wss:``."""
    socket = f"{'wss' if request.secure else 'ws'}://{request.host}"
    return "; ".join((
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        f"connect-src 'self' {socket}",
        "object-src 'self' blob:",
        "frame-src 'self' blob:",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ))


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the headers above, on every response."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", content_security_policy(request))
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Server"] = SERVER_NAME
    if request.secure:
        headers["Strict-Transport-Security"] = f"max-age={HSTS_SECONDS}"
