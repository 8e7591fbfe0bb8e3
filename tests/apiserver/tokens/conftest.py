"""An in-process API server with the token subresource wired test-locally (the lead wires it for real).

What the wiring does is what server.py/subresources.py/registry.py/auth.py need (see apiserver/tokens.py):
the signer in the app, the ``token`` subresource of serviceaccounts, and bearer tokens checked by it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from apiserver import app as app_module
from apiserver import registry, tokens
from apiserver.auth import Authenticator
from apiserver.handlers import subresources
from apiserver.server import ApiServer
from machinery.client import ApiClient
from machinery.kubeconfig import load_kubeconfig


def _restore(table: dict, value: object) -> None:
    """Put back what the lead's real wiring had there (if it exists yet), else remove ours."""
    if value is None:
        table.pop("token", None)
    else:
        table["token"] = value


@pytest.fixture
def token_wiring(tmp_path: Path) -> Iterator[Path]:
    data = tmp_path / "data"
    rt = registry.lookup("", "v1", "serviceaccounts")
    assert rt is not None
    build, authenticate = app_module.build_app, Authenticator.authenticate
    signer = tokens.TokenSigner.ensure(data / "pki")

    def build_app(store, *, authenticator):
        app = build(store, authenticator=authenticator)
        app[tokens.SIGNER] = signer
        return app

    def bearer_too(self, request):
        user = authenticate(self, request)
        header = request.headers.get("Authorization", "")
        if user is None and header.startswith("Bearer "):
            user = signer.authenticate(header[7:].strip())
        return user

    app_module.build_app = build_app
    Authenticator.authenticate = bearer_too
    saved = rt.subresources.get("token"), subresources.SUBRESOURCES.get("token")
    rt.subresources["token"] = "TokenRequest"
    subresources.SUBRESOURCES["token"] = {"POST": tokens.create_token}
    try:
        yield data
    finally:
        app_module.build_app, Authenticator.authenticate = build, authenticate
        _restore(rt.subresources, saved[0])
        _restore(subresources.SUBRESOURCES, saved[1])


@pytest.fixture
async def api(token_wiring: Path) -> AsyncIterator[tuple[ApiServer, ApiClient]]:
    server = ApiServer(data_dir=token_wiring, port=0)
    await server.start()
    try:
        async with ApiClient(load_kubeconfig(server.kubeconfig), request_timeout=10) as client:
            yield server, client
    finally:
        await server.stop()
