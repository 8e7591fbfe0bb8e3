"""Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``) to JSON-shaped dicts.

kubectl 1.32's typed commands send only protobuf, so the API server decodes those bodies here and
handles them like JSON ones from then on. Decoding only: the server always answers in JSON.
"""

from apiserver.protobuf.decode import decode_request
from apiserver.protobuf.wire import ProtobufError

__all__ = ["ProtobufError", "decode_request"]
