"""The wire of `shopfloor.agent.v1.AgentService`: the generated messages and method paths.

The servicer and the client stubs are wired here by hand (`grpc.method_handlers_
generic_handler`, `channel.unary_unary`) rather than with `grpc_tools`' generated
`_pb2_grpc` module, which is untyped: the messages keep their generated types, and a
test holds these paths to the proto's descriptor.
"""

from __future__ import annotations

from . import _protos

_protos.load()  # generates the code first where a checkout or a wheel lacks it

from ._generated import agent_pb2 as pb  # noqa: E402

__all__ = ["CALL", "FOLLOW", "GET_STATE", "PING", "SERVICE", "pb"]

SERVICE = "shopfloor.agent.v1.AgentService"
PING = f"/{SERVICE}/Ping"
GET_STATE = f"/{SERVICE}/GetState"
FOLLOW = f"/{SERVICE}/Follow"
CALL = f"/{SERVICE}/Call"
