"""The API's TLS: HTTPS and WSS from the [server] section's certificate chain and key."""

from __future__ import annotations

import ssl

from server.http.config import ServerSettings


def tls_context(settings: ServerSettings) -> ssl.SSLContext | None:
    """The server's TLS context from server.tls_cert and server.tls_key, or None for plain
    HTTP. A file that cannot be used stops the start with a ValueError naming the key."""
    cert, key = settings.tls_cert, settings.tls_key
    if cert is None or key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except FileNotFoundError as exc:
        raise ValueError(f"server.tls_cert/tls_key: no such file: {exc.filename}") from None
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(f"server.tls_cert/tls_key: cannot load {cert} with {key}: {exc}") from None
    return context
