"""The little type language of the protobuf schema tables.

The schema modules map a qualified message name (``"<group>.<Message>"``, e.g. ``"core.Pod"``) to
``{field_number: (json_name, type)}``. Keeping them as plain strings makes the tables short,
greppable and reviewable against upstream ``generated.proto``; decode.py compiles them once.

Type grammar. Scalars follow Go's JSON encoding of the decoded struct: Go's protobuf code writes
every non-pointer field, zero or not, but ``json:",omitempty"`` leaves zero values (0, false, "")
out of the JSON kubectl would otherwise have sent, and a pointer field is on the wire only when set:
- ``str``, ``int``, ``bool``     non-pointer with omitempty: a zero value is dropped
- ``str!``, ``int!``, ``bool!``  non-pointer without omitempty (``json:"port"``): always kept
- ``*str``, ``*int``, ``*bool``  pointer (``*int32`` in Go): kept whenever present, zero included
  (Deployment ``replicas: 0``, Job ``suspend: false``)
- ``int`` covers int32/int64 varints (two's complement); ``bool`` is a varint 0/1
- ``bytes``  bytes, rendered as base64 text as in JSON (Secret.data)
- ``raw``    bytes kept as Python bytes (the envelope's payload)
- ``json``   bytes holding a JSON document, parsed (RawExtension, FieldsV1)
- ``g.Msg``  a nested message (any name containing a dot)
- ``[]T``    repeated T; ``map[K]V`` a map (entries: key = 1, value = 2)

The scalar markings were derived from what kubectl.1.33 carries: pointer-ness from the gogo
``nullable=false`` option of its compiled descriptors (absent = pointer), omitempty from the struct
tags in its Go type data (the messages with a JSON form of their own keep plain types).

A json_name of ``INLINE`` means a Go struct embedded with ``json:",inline"``: its keys are merged
into the parent object (e.g. Volume's VolumeSource, Probe's ProbeHandler).
"""

from typing import TypeAlias

INLINE = ""

Schema: TypeAlias = dict[str, dict[int, tuple[str, str]]]
