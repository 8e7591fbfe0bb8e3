"""The API server's lifetime: storage, PKI, the app, and a TLS listener, started and stopped in order."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from apiserver import allocators, kubelet_client, openapi, tokens
from apiserver import app as app_module
from apiserver import pki as pki_module
from apiserver.auth import Authenticator
from apiserver.bootstrap import advertise_address, bootstrap, publish_own_endpoints
from apiserver.storage import interface as st
from apiserver.storage.sqlite import SqliteStorage
from apiserver.storage.watch_cache import WatchCache
from apiserver.store import ObjectStore

log = logging.getLogger(__name__)

ADMIN_KUBECONFIG = "admin.kubeconfig"


@dataclass
class ApiServer:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 6443
    #: the backend under the watch cache; None means embedded SQLite in the data dir
    backend: st.Storage | None = None
    extra_hosts: list[str] = field(default_factory=list)

    runner: web.AppRunner | None = None
    storage: st.Storage | None = None
    store: ObjectStore | None = None
    _warm: asyncio.Task | None = None

    @property
    def url(self) -> str:
        """Where clients on this host reach it (loopback for a wildcard bind)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        host = f"[{host}]" if ":" in host else host
        return f"https://{host}:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / ADMIN_KUBECONFIG

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # pods reach us as kubernetes.default.svc = the first service IP, DNAT-ed to the advertised address
        advertised = await advertise_address(self.host)
        hosts = [h for h in (self.host, *self.extra_hosts, allocators.KUBERNETES_SERVICE_IP, advertised)
                 if h and h not in ("0.0.0.0", "::")]
        pki = await asyncio.to_thread(pki_module.ensure_pki, self.data_dir, hosts=hosts)
        backend = self.backend or SqliteStorage(str(self.data_dir / "state.db"))
        self.storage = WatchCache(backend)
        await self.storage.start()
        self.store = ObjectStore(self.storage)
        await bootstrap(self.store, port=self.port, host=self.host)
        signer = await asyncio.to_thread(tokens.TokenSigner.ensure, pki.dir)
        app = app_module.build_app(self.store, authenticator=Authenticator(verify_token=signer.authenticate))
        app[tokens.SIGNER] = signer
        await asyncio.to_thread(kubelet_client.install, app, pki.dir)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, self.port, ssl_context=pki.server_ssl_context(),
                           reuse_address=True)
        await site.start()
        if self.port == 0:
            self.port = self.runner.addresses[0][1]
            await publish_own_endpoints(self.store, host=self.host, port=self.port)
        # compile the OpenAPI documents and strict-field checks off the event loop
        self._warm = asyncio.create_task(openapi.awarm())
        pki_module.write_admin_kubeconfig(pki, self.kubeconfig, server=self.url)
        log.info("API server listening on %s; admin kubeconfig %s", self.url, self.kubeconfig)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        if self.storage is not None:
            await self.storage.close()
            self.storage = None
