"""TLS for ingress pods' port 443: a self-signed certificate for the Ingress TLS hosts."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

FALLBACK_HOST = "labkit-ingress.local"  # named in every certificate, so it is never empty


def make_tls_context(state_dir: str, hosts: Iterable[str]) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for ``hosts`` (openssl CLI)."""
    import ssl  # only ingress pods with port 443 pay for it

    names = sorted({h for h in hosts if h} | {FALLBACK_HOST})
    key = os.path.join(state_dir, "ingress-tls.key")
    cert = os.path.join(state_dir, "ingress-tls.crt")
    san = ",".join(f"DNS:{h}" for h in names)
    if shutil.which("openssl") is None:
        raise OSError("serving TLS on 443 needs the openssl command, which is not installed")
    proc = subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=labkit-ingress",
            "-addext",
            f"subjectAltName={san}",
            "-keyout",
            key,
            "-out",
            cert,
        ],
        capture_output=True,
        text=True,
        timeout=10,
    )
    if proc.returncode != 0:
        raise OSError(
            f"openssl could not make the ingress certificate: {proc.stderr.strip()[-200:]}"
        )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


class IngressTls:
    """The ingress server context of one lab, remade only when its TLS hosts change."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self._hosts: tuple[str, ...] | None = None
        self._context: ssl.SSLContext | None = None

    async def context(self, hosts: Iterable[str]) -> ssl.SSLContext:
        """The context for ``hosts``, made off the event loop (openssl takes a moment)."""
        wanted = tuple(sorted(hosts))
        if self._context is None or self._hosts != wanted:
            self._context = await asyncio.to_thread(make_tls_context, self.state_dir, wanted)
            self._hosts = wanted
        return self._context
