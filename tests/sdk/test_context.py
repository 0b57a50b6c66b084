"""`AgentContext.from_env()`: the contract's variables and files, read once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shopfloor.sdk import AgentContext, AgentContextError, DeviceChannel

KEY = "4f1c2e0a-thing-key"
POSTGRES = "postgresql://sf_agent_x:hex-password@127.0.0.1:5432/sf_db_x"


def contract_env(files: Path) -> dict[str, str]:
    return {
        "SHOPFLOOR_AGENT_NAME": "press-7",
        "SHOPFLOOR_AGENT_ORG": "org-1",
        "SHOPFLOOR_AGENT_VERSION": "1.4.2",
        "SHOPFLOOR_AGENT_FILES": str(files),
        "SHOPFLOOR_THING_ID": "thing-1",
        "SHOPFLOOR_THING_KEY": KEY,
        "SHOPFLOOR_CHANNELS": '[{"id":"ch-1","name":"press-7"},{"id":"ch-2","name":"telemetry"}]',
        "SHOPFLOOR_HTTP_URL": "http://platform:8000",
        "SHOPFLOOR_MQTT_URL": "mqtt://platform:1883",
        "SHOPFLOOR_POSTGRES_URL": POSTGRES,
        "PGUSER": "sf_agent_x",
    }


def test_everything_the_platform_hands_over_is_read(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"interval": 2, "opcua": {"port": 4840}}))
    (tmp_path / "cert.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    context = AgentContext.from_env(contract_env(tmp_path))
    assert context == AgentContext(
        name="press-7", org_id="org-1", version="1.4.2", files_dir=tmp_path,
        config={"interval": 2, "opcua": {"port": 4840}}, thing_id="thing-1", thing_key=KEY,
        channels=(DeviceChannel(id="ch-1", name="press-7"),
                  DeviceChannel(id="ch-2", name="telemetry")),
        http_url="http://platform:8000", mqtt_url="mqtt://platform:1883", postgres_url=POSTGRES,
    )  # fmt: skip
    assert context.file("cert.pem") == tmp_path / "cert.pem"
    assert context.file("key.pem") is None


def test_run_by_hand_the_optional_parts_are_empty() -> None:
    context = AgentContext.from_env({"SHOPFLOOR_THING_KEY": "", "PATH": "/usr/bin"})
    assert context == AgentContext()
    assert (context.name, context.config, context.channels) == ("", {}, ())
    assert context.thing_key is None and context.http_url is None and context.files_dir is None
    assert context.file("cert.pem") is None


def test_a_files_dir_without_config_json_is_an_empty_config(tmp_path: Path) -> None:
    context = AgentContext.from_env({"SHOPFLOOR_AGENT_FILES": str(tmp_path)})
    assert context.config == {} and context.files_dir == tmp_path


def test_credentials_stay_out_of_the_repr(tmp_path: Path) -> None:
    text = repr(AgentContext.from_env(contract_env(tmp_path)))
    assert "press-7" in text
    assert KEY not in text and "hex-password" not in text


def test_reloaded_reads_config_json_again(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text('{"interval": 1}')
    context = AgentContext.from_env(contract_env(tmp_path))
    config.write_text('{"interval": 3, "machine": "mill-7"}')
    assert context.config == {"interval": 1}
    reloaded = context.reloaded()
    assert reloaded.config == {"interval": 3, "machine": "mill-7"}
    assert reloaded.thing_key == KEY and reloaded.channels == context.channels


@pytest.mark.parametrize(
    ("config", "message"),
    [("{", "is not JSON"), ("[1, 2]", "holds list, not a JSON object")],
)
def test_a_config_json_that_is_not_an_object_is_refused(
    tmp_path: Path, config: str, message: str
) -> None:
    (tmp_path / "config.json").write_text(config)
    with pytest.raises(AgentContextError, match=message):
        AgentContext.from_env({"SHOPFLOOR_AGENT_FILES": str(tmp_path)})


@pytest.mark.parametrize("channels", ["[", '{"id": "x"}', '[{"name": "no id"}]', '["ch-1"]'])
def test_malformed_channels_are_refused(channels: str) -> None:
    with pytest.raises(AgentContextError, match="SHOPFLOOR_CHANNELS"):
        AgentContext.from_env({"SHOPFLOOR_CHANNELS": channels})
