"""The built-in scenarios; importing this package registers them by name.

Run order in a full run is the order of the imports below. MQTT scenarios (the embedded
broker and Mosquitto against a bare broker as anchor) go in their own modules here, e.g.
`bench/scenarios/mqtt.py` with `class MqttScenario(Scenario, name="mqtt")`, imported
below; the quick test picks them up from the registry.
"""

from bench.scenarios import http, latency, readers, memory, mqtt, pki, bootstrap, agents  # noqa: F401, I001
from bench.scenarios import agent_calls, relations  # noqa: F401  (after agents: run order)
from bench.scenarios import aas_invoke, flows, split, dashboards  # noqa: F401
