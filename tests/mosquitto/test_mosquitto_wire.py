"""The pure parts: command encoding, answer decoding, the access model, the sync plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mosquitto_testkit import connection, make_thing

from shopfloor.adapters.mosquitto import (
    Acl,
    BrokerUrl,
    DynsecError,
    InvalidBrokerUrl,
    MosquittoConfig,
    bridge_acls,
    render_config,
    thing_acls,
)
from shopfloor.adapters.mosquitto._access import bridge_client, secret_fingerprint, thing_client
from shopfloor.adapters.mosquitto._bridge_support import RecentIds
from shopfloor.adapters.mosquitto._dynsec import (
    ClientInfo,
    RoleInfo,
    create_client,
    decode_responses,
    encode_commands,
    modify_client,
    parse_clients,
    parse_roles,
)
from shopfloor.adapters.mosquitto._plan import plan_sync
from shopfloor.registry import Permission


def test_commands_are_encoded_as_one_batch() -> None:
    payload = encode_commands(
        [create_client("t1", "k1", textname="Press", roles=["thing:t1"]), modify_client("t2")]
    )

    assert json.loads(payload) == {
        "commands": [
            {
                "command": "createClient",
                "username": "t1",
                "password": "k1",
                "textname": "Press",
                "textdescription": "",
                "roles": [{"rolename": "thing:t1"}],
            },
            {"command": "modifyClient", "username": "t2"},
        ]
    }
    with pytest.raises(ValueError, match="at least one"):
        encode_commands([])


def test_answers_keep_command_data_error_and_correlation() -> None:
    payload = (
        b'{"responses":[{"command":"getClient","error":"Client not found","correlationData":"a-1"},'
        b'{"command":"listClients","data":{"totalCount":0,"clients":[]},"correlationData":"a-2"},'
        b'{"command":"Unknown command","error":"Payload not valid JSON"}]}'
    )

    missing, listed, broken = decode_responses(payload)

    assert (missing.command, missing.error, missing.correlation_data) == (
        "getClient",
        "Client not found",
        "a-1",
    )
    assert listed.ok and listed.data == {"totalCount": 0, "clients": []}
    assert broken.correlation_data is None
    with pytest.raises(DynsecError, match="Client not found") as raised:
        missing.raise_for_error()
    assert (raised.value.command, raised.value.reason) == ("getClient", "Client not found")


@pytest.mark.parametrize("payload", [b"not json", b"[]", b'{"responses": 3}', b'{"responses":[1]}'])
def test_malformed_answers_are_value_errors(payload: bytes) -> None:
    with pytest.raises(ValueError, match="dynsec response"):
        decode_responses(payload)


def test_listings_are_parsed() -> None:
    clients = parse_clients(
        {"clients": [{"username": "t1", "textname": "Press", "roles": [{"rolename": "r"}]}]}
    )
    roles = parse_roles(
        {"roles": [{"rolename": "r", "acls": [{"acltype": "subscribePattern", "topic": "a/#"}]}]}
    )

    assert clients == [ClientInfo("t1", "Press", "", frozenset({"r"}))]
    assert roles == [RoleInfo("r", frozenset({Acl("subscribePattern", "a/#", allow=False)}))]


def test_thing_acls_follow_connection_permissions() -> None:
    thing = make_thing()
    acls = thing_acls(
        thing.id,
        [
            connection(thing, "c1", Permission.PUBLISH),
            connection(thing, "c2", Permission.SUBSCRIBE),
        ],
    )
    own_errors = f"channels/+/messages/_errors/{thing.id}"

    assert acls == {
        Acl("publishClientReceive", "channels/#", allow=False, priority=-1),
        Acl("publishClientSend", "channels/+/messages/_errors/#", allow=False, priority=1),
        Acl("subscribePattern", "channels/+/messages/_errors/#", allow=False, priority=1),
        Acl("publishClientReceive", "channels/+/messages/_errors/#", allow=False, priority=1),
        Acl("subscribePattern", own_errors, allow=True, priority=2),
        Acl("publishClientReceive", own_errors, allow=True, priority=2),
        Acl("publishClientSend", "channels/c1/messages", allow=True),
        Acl("publishClientSend", "channels/c1/messages/#", allow=True),
        Acl("subscribePattern", "channels/c2/messages", allow=True),
        Acl("subscribePattern", "channels/c2/messages/#", allow=True),
        Acl("publishClientReceive", "channels/c2/messages", allow=True),
        Acl("publishClientReceive", "channels/c2/messages/#", allow=True),
    }


def test_the_bridge_may_publish_on_every_channel() -> None:
    assert Acl("publishClientSend", "channels/#", allow=True) in bridge_acls()


def test_fingerprints_differ_by_secret_and_client() -> None:
    assert secret_fingerprint("t1", "k1") == secret_fingerprint("t1", "k1")
    assert secret_fingerprint("t1", "k1") != secret_fingerprint("t1", "k2")
    assert secret_fingerprint("t1", "k1") != secret_fingerprint("t2", "k1")
    assert "k1" not in secret_fingerprint("t1", "k1")


def _as_broker_has_it(wanted_items: list) -> tuple[list[ClientInfo], list[RoleInfo]]:  # type: ignore[type-arg]
    clients = [
        ClientInfo(w.username, w.textname, w.fingerprint, frozenset({w.rolename}))
        for w in wanted_items
    ]
    roles = [RoleInfo(w.rolename, w.acls) for w in wanted_items]
    return clients, roles


def test_plan_is_empty_when_the_broker_matches() -> None:
    thing = make_thing()
    wanted = [
        bridge_client("b" * 20),
        thing_client(thing.id, "press", "key", [connection(thing, "c1")]),
    ]
    clients, roles = _as_broker_has_it(wanted)

    plan = plan_sync(clients, roles, wanted, delete_stale=True)

    assert plan.commands == ()
    assert plan.unchanged == 2


def test_plan_deletes_only_owned_stale_clients_and_roles() -> None:
    stale, orphan = make_thing(), make_thing()
    clients, roles = _as_broker_has_it([thing_client(stale.id, "old", "key", [])])
    clients.append(ClientInfo("grafana", "", "", frozenset({"viewer"})))
    roles += [RoleInfo("viewer", frozenset()), RoleInfo(f"thing:{orphan.id}", frozenset())]

    plan = plan_sync(clients, roles, [], delete_stale=True)
    kept = plan_sync(clients, roles, [], delete_stale=False)

    assert [c["command"] for c in plan.commands] == ["deleteClient", "deleteRole", "deleteRole"]
    assert {c.get("username") or c.get("rolename") for c in plan.commands} == {
        stale.id,
        f"thing:{stale.id}",
        f"thing:{orphan.id}",
    }
    assert set(plan.deleted) == {stale.id, orphan.id}
    assert kept.commands == ()


def test_plan_creates_roles_before_clients() -> None:
    thing = make_thing()
    plan = plan_sync([], [], [thing_client(thing.id, "press", "key", [])], delete_stale=True)

    assert [c["command"] for c in plan.commands] == ["createRole", "createClient"]
    assert plan.created == (thing.id,)


def test_plan_rejects_a_client_wanted_twice() -> None:
    thing = make_thing()
    twice = [thing_client(thing.id, "a", "k", []), thing_client(thing.id, "b", "k", [])]
    with pytest.raises(ValueError, match="wanted twice"):
        plan_sync([], [], twice, delete_stale=True)


def test_broker_url() -> None:
    url = BrokerUrl.parse("mqtt://admin%40plant:p%3Ass@broker.local:1884")
    assert (url.host, url.port, url.username, url.password) == (
        "broker.local",
        1884,
        "admin@plant",
        "p:ss",
    )
    assert "p:ss" not in repr(url)
    assert BrokerUrl.parse("mqtt://a:b@h").port == 1883


@pytest.mark.parametrize("bad", ["http://a:b@h:1", "mqtt://h:1883", "mqtt://a@h", "mqtt://a:b@h:x"])
def test_bad_broker_urls(bad: str) -> None:
    with pytest.raises(InvalidBrokerUrl):
        BrokerUrl.parse(bad)


def test_rendered_config_loads_the_publisher_plugin_first() -> None:
    text = render_config(
        MosquittoConfig(
            dynsec_plugin=Path("/opt/dynsec.so"),
            dynsec_config=Path("/etc/mq/dynsec.json"),
            publisher_plugin=Path("/opt/publisher.so"),
            port=1884,
            persistence_dir=Path("/var/lib/mq"),
        )
    )
    lines = text.splitlines()

    assert lines.index("plugin /opt/publisher.so") < lines.index("plugin /opt/dynsec.so")
    # Mosquitto gives a plugin the plugin_opt_ lines between its line and the next plugin.
    bridge_option = lines.index("plugin_opt_bridge_username shopfloor-bridge")
    assert lines.index("plugin /opt/publisher.so") < bridge_option
    assert bridge_option < lines.index("plugin /opt/dynsec.so")
    for expected in [
        "listener 1884",
        "per_listener_settings false",
        "allow_anonymous false",
        "set_tcp_nodelay true",
        "plugin_opt_config_file /etc/mq/dynsec.json",
        "max_queued_messages 1000000",
        "max_queued_bytes 0",
        "persistence true",
        "persistence_location /var/lib/mq/",
    ]:
        assert expected in lines


def test_config_refuses_an_unlimited_message_queue() -> None:
    with pytest.raises(ValueError, match="max_queued_messages"):
        MosquittoConfig(
            dynsec_plugin=Path("d.so"),
            dynsec_config=Path("d.json"),
            publisher_plugin=Path("p.so"),
            max_queued_messages=0,
        )


def test_recent_ids_remember_the_last_ones_only() -> None:
    recent = RecentIds(3)
    for message_id in ("a", "b", "c", "b"):  # "b" again: still one entry
        recent.add(message_id)
    assert all(i in recent for i in "abc")
    recent.add("d")
    assert "a" not in recent
    assert all(i in recent for i in "bcd")
    recent.add("e")
    assert "b" not in recent
    assert all(i in recent for i in "cde")
