"""One place where a servicer method's exception becomes the gRPC status the client reads.

``translate_errors`` wraps every RPC method of a servicer class (the CamelCase coroutines) so a
``CRIError`` or a lower layer's error aborts the call with the code ``errors.status_of`` picks and
the exception's one-line message. Unexpected failures (INTERNAL) are logged with their traceback,
since the client sees only the message.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from engine.cri.errors import message_of, status_of

log = logging.getLogger(__name__)

T = TypeVar("T", bound=type)
Method = Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[Any]]


def _wrap(name: str, method: Method) -> Method:
    @functools.wraps(method)
    async def rpc(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            code = status_of(exc)
            if code is grpc.StatusCode.INTERNAL:
                log.exception("CRI %s failed", name)
            else:
                log.debug("CRI %s: %s: %s", name, code.name, exc)
            await context.abort(code, message_of(exc))

    return rpc


def translate_errors(cls: T) -> T:
    """Class decorator: wrap each RPC method (CamelCase coroutine function) defined on ``cls``."""
    for name, member in list(vars(cls).items()):
        if name[:1].isupper() and inspect.iscoroutinefunction(member):
            setattr(cls, name, _wrap(name, member))
    return cls
