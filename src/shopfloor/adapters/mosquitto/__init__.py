"""Mosquitto mode: things connect to an external Mosquitto 2.0 kept in sync with the registry.

The service that does all of it (reconciling, and bridging messages both ways):

async with MosquittoService(settings.mqtt_broker_url, bridge_password, registry, ingress,
                            bus, metrics_registry=metrics) as service:
    ...                                                     # health: service.ready

Its parts, usable alone:

async with DynsecClient.from_url(settings.mqtt_broker_url) as client:
    sync = DynsecSync(client, bridge_password=bridge_password)
    await sync.sync_all(registry_snapshot(registry))     # at start, and now and then
    await sync.thing_created(thing, key, connections)      # then on every registry change

The broker runs the dynamic-security plugin (clients, roles, ACLs) and Shopfloor's
publisher plugin (`build_plugin`), which stamps every PUBLISH with the user property
`shopfloor-publisher` = the authenticated thing id (and `shopfloor-message-id`), and
lets the bridge name the publisher of what it republishes. `render_config` and
`init_dynsec_config` prepare a broker, `check_broker_files` and `check_broker_logins`
(`shopfloor mosquitto check`) find what keeps it from working; docs/mosquitto.md is the
operator's guide.
`CrlKeeper` keeps the CRL of a TLS listener current (docs/mtls.md).
"""

from ._access import (
    BRIDGE_ROLE,
    BRIDGE_USERNAME,
    ERRORS_SUBTOPIC,
    MESSAGE_ID_PROPERTY,
    PROTOCOL_PROPERTY,
    PUBLISHER_PROPERTY,
    RESERVED_PROPERTY_PREFIX,
    THING_ROLE_PREFIX,
    bridge_acls,
    channel_topics,
    errors_topic,
    thing_acls,
    thing_role,
)
from ._bridge_support import BridgeMetrics, parse_channel_topic
from ._check import (
    BrokerFiles,
    Finding,
    Severity,
    check_broker_files,
    check_broker_logins,
    read_broker_files,
)
from ._client import BrokerUrl, DynsecClient
from ._config import (
    MosquittoConfig,
    MosquittoTls,
    find_dynsec_plugin,
    init_dynsec_config,
    render_config,
)
from ._crl import CrlKeeper, reload_command, signal_pid_file
from ._dynsec import CONTROL_TOPIC, RESPONSE_TOPIC, Acl, DynsecCommand, DynsecResponse
from ._errors import (
    DynsecError,
    DynsecInitError,
    DynsecUnavailable,
    InvalidBrokerUrl,
    MosquittoError,
    PluginBuildError,
)
from ._options import MosquittoOptions
from ._plugin import build_plugin, plugin_source
from ._service import MosquittoService
from ._snapshot import SnapshotRegistry, registry_snapshot
from ._sync import DynsecCommands, DynsecSync, SyncReport, ThingAccess

__all__ = [
    "BRIDGE_ROLE",
    "BRIDGE_USERNAME",
    "CONTROL_TOPIC",
    "ERRORS_SUBTOPIC",
    "MESSAGE_ID_PROPERTY",
    "PROTOCOL_PROPERTY",
    "PUBLISHER_PROPERTY",
    "RESERVED_PROPERTY_PREFIX",
    "RESPONSE_TOPIC",
    "THING_ROLE_PREFIX",
    "Acl",
    "BridgeMetrics",
    "BrokerFiles",
    "BrokerUrl",
    "CrlKeeper",
    "DynsecClient",
    "DynsecCommand",
    "DynsecCommands",
    "DynsecError",
    "DynsecInitError",
    "DynsecResponse",
    "DynsecSync",
    "DynsecUnavailable",
    "Finding",
    "InvalidBrokerUrl",
    "MosquittoConfig",
    "MosquittoError",
    "MosquittoOptions",
    "MosquittoService",
    "MosquittoTls",
    "PluginBuildError",
    "Severity",
    "SnapshotRegistry",
    "SyncReport",
    "ThingAccess",
    "bridge_acls",
    "build_plugin",
    "channel_topics",
    "check_broker_files",
    "check_broker_logins",
    "errors_topic",
    "find_dynsec_plugin",
    "init_dynsec_config",
    "parse_channel_topic",
    "plugin_source",
    "read_broker_files",
    "registry_snapshot",
    "reload_command",
    "render_config",
    "signal_pid_file",
    "thing_acls",
    "thing_role",
]
