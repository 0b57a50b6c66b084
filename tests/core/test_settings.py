"""Settings by capability: flat environment names kept, sections typed, secrets masked."""

from __future__ import annotations

import pytest
from pydantic import Field, SecretStr, ValidationError

from shopfloor.adapters.capability import MqttSettings
from shopfloor.core import Section, SettingsError, mask_url_passwords, settings_model
from shopfloor.core.capability import DatabaseSettings
from shopfloor.messaging.capability import MessagingSettings
from shopfloor.settings import Settings
from shopfloor.storage.capability import StorageSettings


def test_the_spec_environment_names_fill_their_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPFLOOR_DATABASE_URL", "postgresql://db.plant/shopfloor")
    monkeypatch.setenv("SHOPFLOOR_BUS_URL", "nats://bus.plant:4222")
    monkeypatch.setenv("SHOPFLOOR_TIMESERIES_URL", "influxdb://tsdb.plant:8086/plant")
    monkeypatch.setenv("SHOPFLOOR_MQTT_BROKER_URL", "mqtt://admin:pw@broker.plant:1883")
    monkeypatch.setenv("SHOPFLOOR_MQTT_BRIDGE_PASSWORD", "a-bridge-password-long-enough")
    monkeypatch.setenv("SHOPFLOOR_HTTP_PORT", "8081")
    settings = Settings()
    assert settings.http_port == 8081
    assert settings.section(DatabaseSettings).database_url == "postgresql://db.plant/shopfloor"
    assert settings.section(MessagingSettings).bus_url == "nats://bus.plant:4222"
    assert settings.section(StorageSettings).timeseries_url.startswith("influxdb://")
    assert not settings.section(MqttSettings).embedded


def test_flat_and_nested_values_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPFLOOR_BUS_URL", "nats://from-env:4222")
    assert Settings(bus_url="memory://").section(MessagingSettings).bus_url == "memory://"
    nested = Settings(messaging={"bus_url": "memory://?max_pending=10"})
    assert nested.section(MessagingSettings).bus_url == "memory://?max_pending=10"
    assert Settings().section(MessagingSettings).bus_url == "nats://from-env:4222"


def test_a_section_may_name_its_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    class CaSettings(Section, section="test-ca", env_prefix="SHOPFLOOR_TEST_CA_"):
        url: str = Field(default="builtin://")
        passphrase: SecretStr = SecretStr("")

    monkeypatch.setenv("SHOPFLOOR_TEST_CA_URL", "cfssl+http://ca.plant:8888")
    model = settings_model([CaSettings], ["api"])
    settings = model(test_ca_passphrase="do-not-print")
    assert settings.section(CaSettings).url == "cfssl+http://ca.plant:8888"
    shown = {info.env: info.shown for info in settings.describe()}
    assert shown["SHOPFLOOR_TEST_CA_PASSPHRASE"] == "[set]"


def test_two_fields_with_one_environment_name_are_refused() -> None:
    class Clash(Section, section="test-clash"):
        bus_url: str = ""

    with pytest.raises(SettingsError, match="SHOPFLOOR_BUS_URL"):
        settings_model([MessagingSettings, Clash], ["api"])


def test_a_bad_section_value_names_its_variable() -> None:
    with pytest.raises(ValidationError, match="SHOPFLOOR_MQTT_BRIDGE_PASSWORD"):
        Settings(mqtt_broker_url="mqtt://broker:1883", mqtt_bridge_password="short")


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql://u:secret@host/db", "postgresql://u:***@host/db"),
        ("nats://a:pw@n1:4222,nats://b:pw2@n2:4222", "nats://a:***@n1:4222,nats://b:***@n2:4222"),
        ("influxdb://host:8086/db", "influxdb://host:8086/db"),
        ("mqtt://user@host:1883", "mqtt://user@host:1883"),
        ("not a url", "not a url"),
    ],
)
def test_passwords_inside_urls_are_masked(text: str, masked: str) -> None:
    assert mask_url_passwords(text) == masked
