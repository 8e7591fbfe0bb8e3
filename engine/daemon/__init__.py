"""The engine daemon: the Docker Engine API on a unix socket, over the image store and registry client.

``server`` owns the lifetimes (store, registry client, aiohttp runner, unix-socket site); ``app``
holds the route table and the API-version rules; one module per group of endpoints (``system``,
``images``, ``transfer``, ``archives``, ``build``) turns Docker's wire shapes into calls on
``engine.images``/``engine.build`` and back. Streaming endpoints share ``jsonstream``; blocking
store work always runs in a thread so the event loop keeps serving other clients.
"""
