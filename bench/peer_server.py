"""The peer of the API server benchmark: a bare aiohttp + uvloop + orjson server.

It answers ``GET /obj`` with a ~1 KB JSON object and ``POST /obj`` by decoding and re-encoding the
body, the least work any JSON-over-HTTP server can do. Measured with the same load generator as
Pinnace, it shows how much of a figure is the framework's floor and how much is ours.

Run as ``python -m bench.peer_server --port P [--cert C --key K]``; with a cert it serves HTTPS.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import ssl
from pathlib import Path

import orjson
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

OBJECT_PATH = "/obj"
HOST = "127.0.0.1"


def sample_object(size: int = 1024) -> dict:
    """A ConfigMap-shaped dict whose JSON is about ``size`` bytes, like the benchmark's objects."""
    obj = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "peer", "namespace": "bench", "resourceVersion": "1"},
           "data": {"payload": ""}}
    obj["data"]["payload"] = "x" * max(0, size - len(orjson.dumps(obj)))
    return obj


def write_self_signed(directory: Path) -> tuple[Path, Path]:
    """A self-signed P-256 certificate for 127.0.0.1 (the same key type as Pinnace's PKI)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench-peer")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "peer.crt", directory / "peer.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def make_app() -> web.Application:
    body = sample_object()

    async def get_object(_request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def echo_object(request: web.Request) -> web.Response:
        try:
            obj = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return web.Response(status=400, text="body is not JSON")
        return web.Response(status=201, body=orjson.dumps(obj), content_type="application/json")

    app = web.Application()
    app.router.add_get(OBJECT_PATH, get_object)
    app.router.add_post(OBJECT_PATH, echo_object)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peer_server", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", type=Path, help="PEM certificate: serve HTTPS")
    parser.add_argument("--key", type=Path, help="PEM key of --cert")
    args = parser.parse_args(argv)
    if (args.cert is None) != (args.key is None):
        parser.error("--cert and --key go together")
    context = None
    if args.cert is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    import uvloop

    web.run_app(make_app(), host=HOST, port=args.port, ssl_context=context, access_log=None, print=None,
                handle_signals=True, loop=uvloop.new_event_loop())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
