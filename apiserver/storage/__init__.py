"""Where the API server keeps objects: the storage contract, its backends and the watch cache.

``interface`` is the contract (a Protocol, records, errors) that every backend and the cache meet;
``sqlite`` (with ``sqlite_schema``, ``sqlite_writer``, ``sqlite_reader``) is the embedded backend;
``watch_cache`` serves reads and watches from memory in front of any backend, using ``keyindex``
for prefix ranges and ``fanout`` for per-watcher queues; ``codec`` turns objects into stored bytes.
"""
