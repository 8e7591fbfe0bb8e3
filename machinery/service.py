"""Running a daemon's asyncio main until SIGINT/SIGTERM, the same way for every ``pinnace`` service.

``pinnace server``, ``pinnace scheduler`` and ``pinnace controller-manager`` each pass a coroutine
function that starts its parts, waits on the given stop event, and stops its parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


async def _until_signalled(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await main(stop)


def run(main: Callable[[asyncio.Event], Awaitable[None]], *, verbose: bool = False) -> int:
    """Set up logging and uvloop, then run ``main(stop)``; SIGINT/SIGTERM set ``stop``."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=LOG_FORMAT)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(_until_signalled(main))
    return 0
