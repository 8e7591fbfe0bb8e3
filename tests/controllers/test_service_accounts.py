"""The serviceaccount controller against a real server: ``default`` and ``kube-root-ca.crt`` appear in
every namespace, come back when deleted, and the CA is the cluster's."""

from __future__ import annotations

import asyncio

from controller_env import Running

from controllers.service_accounts import CONFIGMAPS, ROOT_CA, SERVICE_ACCOUNTS
from machinery.client import ApiClient, NotFound


async def _eventually(client: ApiClient, res, name: str, namespace: str) -> dict:
    async with asyncio.timeout(10):
        while True:
            try:
                return await client.get(res, name, namespace=namespace)
            except NotFound:
                await asyncio.sleep(0.05)


async def test_default_account_and_root_ca_per_namespace(client: ApiClient, namespace: str,
                                                          running: Running) -> None:
    async with running("serviceaccount"):
        sa = await _eventually(client, SERVICE_ACCOUNTS, "default", namespace)
        assert sa["metadata"]["namespace"] == namespace
        cm = await _eventually(client, CONFIGMAPS, ROOT_CA, namespace)
        assert cm["data"]["ca.crt"].encode() == client.config.ca_data
        assert cm["data"]["ca.crt"].startswith("-----BEGIN CERTIFICATE-----")

        await client.delete(SERVICE_ACCOUNTS, "default", namespace=namespace)
        await client.patch(CONFIGMAPS, ROOT_CA, {"data": {"ca.crt": "tampered"}}, namespace=namespace)
        again = await _eventually(client, SERVICE_ACCOUNTS, "default", namespace)
        assert again["metadata"]["uid"] != sa["metadata"]["uid"]
        async with asyncio.timeout(10):
            while True:
                current = await client.get(CONFIGMAPS, ROOT_CA, namespace=namespace)
                if current["data"]["ca.crt"] != "tampered":
                    break
                await asyncio.sleep(0.05)
