"""A Core written by hand with plain kafka-python, as the AAS developer guide's code is.

It is the Core of the press in `tests/aas`: it runs the Operation `Controls.start`
(`rpm` = `speed` * 100) and, once both sides run, asks the Manager to set
`Controls.speed` to the value of `PRESS_SPEED` (when set). It uses no Shopfloor code,
only docs/aas-protocol.md:

- a KafkaConsumer assigned partition 0 of the topic, from the earliest offset;
- a KafkaProducer sending to partition 1 with the keys `core-status`,
  `core-service-request` and `core-service-response`, values as UTF-8 JSON;
- partition 1 read back first: requests answered already are not run again, and new
  interaction ids (odd) are above every one used before;
- `booting`, `booted`, then `running` once the Manager is `booted` or `running`.

    SHOPFLOOR_CORE_TRANSPORT_URL=kafka://127.0.0.1:9092 SHOPFLOOR_CORE_TOPIC=aas.... \
    PRESS_SUBMODEL_ID=https://example.org/sm/press-7/controls python kafka_python_core.py

It stops on SIGTERM or SIGINT, saying `stopping` and `idle`.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition


class Globals:
    """Tip 3 of the guide: what the whole Core uses, written once."""

    KAFKA_SERVER = os.environ["SHOPFLOOR_CORE_TRANSPORT_URL"].removeprefix("kafka://")
    KAFKA_TOPIC = os.environ["SHOPFLOOR_CORE_TOPIC"]
    SUBMODEL_ID = os.environ.get("PRESS_SUBMODEL_ID", "")
    PRESS_SPEED = os.environ.get("PRESS_SPEED")
    MANAGER_PARTITION = 0
    CORE_PARTITION = 1
    CLIENT_ID = "i4-0-smia-core"
    SESSION = uuid.uuid4().hex


state = "booting"
manager_state: str | None = None
answered: set[int] = set()
#: Tip 2 of the guide: the requests of this Core waiting for their answer.
waiting: dict[int, threading.Event] = {}
answers: dict[int, dict[str, Any]] = {}
last_id = 0
lock = threading.Lock()
stop = threading.Event()

producer = KafkaProducer(
    bootstrap_servers=[Globals.KAFKA_SERVER],
    client_id=Globals.CLIENT_ID,
    value_serializer=lambda x: json.dumps(x).encode("utf-8"),
    key_serializer=str.encode,
)


def send(key: str, value: dict[str, Any]) -> None:
    producer.send(Globals.KAFKA_TOPIC, value=value, key=key, partition=Globals.CORE_PARTITION)
    producer.flush()


def publish_state(new_state: str) -> None:
    global state
    state = new_state
    send("core-status", {"state": state, "session": Globals.SESSION, "timestamp": time.time()})


def next_interaction_id() -> int:
    """Odd, and above every id this Core used (the Manager's are even)."""
    global last_id
    with lock:
        last_id = max(last_id + 1, int(time.time() * 1_000_000))
        if last_id % 2 == 0:
            last_id += 1
        return last_id


def read_back_own_partition() -> None:
    """What this Core published before it started again."""
    global last_id
    own = KafkaConsumer(
        bootstrap_servers=[Globals.KAFKA_SERVER],
        client_id=Globals.CLIENT_ID,
        value_deserializer=lambda x: json.loads(x.decode("utf-8")),
        enable_auto_commit=False,
    )
    partition = TopicPartition(Globals.KAFKA_TOPIC, Globals.CORE_PARTITION)
    own.assign([partition])
    own.seek_to_beginning(partition)
    end = own.end_offsets([partition])[partition]
    while own.position(partition) < end:
        for message in own.poll(timeout_ms=500).get(partition, []):
            key = message.key.decode("utf-8")
            if key == "core-service-response":
                answered.add(message.value["interaction_id"])
            elif key == "core-service-request":
                last_id = max(last_id, message.value["interaction_id"])
    own.close()


def run_operation(request: dict[str, Any]) -> None:
    """A thread per request (Tip 1): the asset may take its time."""
    if request["service_id"] == "Controls.start":
        speed = request["parameters"]["input_arguments"]["speed"]
        status, result, error = "Completed", {"output_arguments": {"rpm": speed * 100}}, None
    else:
        status, result, error = "Failed", {}, f"no service {request['service_id']}"
    response = {
        "interaction_id": request["interaction_id"],
        "thread": request.get("thread"),
        "service_id": request["service_id"],
        "service_type": request["service_type"],
        "status": status,
        "result": result,
        "error": error,
        "timestamp": time.time(),
    }
    send("core-service-response", response)
    with lock:
        answered.add(request["interaction_id"])


def request_manager(service_id: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """Only while the Manager is running (the protocol's rule)."""
    interaction_id = next_interaction_id()
    done = threading.Event()
    waiting[interaction_id] = done
    send(
        "core-service-request",
        {
            "interaction_id": interaction_id,
            "service_id": service_id,
            "service_type": "SubmodelService",
            "parameters": parameters,
            "timestamp": time.time(),
            "timeout": 30,
        },
    )
    if not done.wait(30):
        raise TimeoutError(f"the Manager did not answer {service_id}")
    return answers.pop(interaction_id)


def set_speed() -> None:
    if Globals.PRESS_SPEED is None:
        return
    answer = request_manager(
        "SetSubmodelElementValue",
        {
            "submodel_id": Globals.SUBMODEL_ID,
            "path": "Controls.speed",
            "value": int(Globals.PRESS_SPEED),
        },
    )
    print("the Manager answered", answer["status"], flush=True)


def aas_manager_method() -> None:
    global manager_state
    # KAFKA CONSUMER (to receive service requests from the AAS Manager or read the
    # responses to the Core's requests)
    kafka_consumer_partition_core = KafkaConsumer(
        bootstrap_servers=[Globals.KAFKA_SERVER],
        client_id=Globals.CLIENT_ID,
        value_deserializer=lambda x: json.loads(x.decode("utf-8")),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    partition = TopicPartition(Globals.KAFKA_TOPIC, Globals.MANAGER_PARTITION)
    kafka_consumer_partition_core.assign([partition])
    kafka_consumer_partition_core.seek_to_beginning(partition)
    publish_state("booted")
    while not stop.is_set():
        for message in kafka_consumer_partition_core.poll(timeout_ms=200).get(partition, []):
            key, value = message.key.decode("utf-8"), message.value
            if key == "manager-status":
                manager_state = value["state"]
                if state == "booted" and manager_state in ("booted", "running"):
                    publish_state("running")
                    threading.Thread(target=set_speed, daemon=True).start()
            elif key == "manager-service-request":
                with lock:
                    if value["interaction_id"] in answered:
                        continue  # a replay: answered before
                    answered.add(value["interaction_id"])
                threading.Thread(target=run_operation, args=(value,), daemon=True).start()
            elif key == "manager-service-response" and value["interaction_id"] in waiting:
                answers[value["interaction_id"]] = value
                waiting.pop(value["interaction_id"]).set()
    kafka_consumer_partition_core.close()


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    read_back_own_partition()
    publish_state("booting")
    thread_aas_manager = threading.Thread(target=aas_manager_method, args=())
    thread_aas_manager.start()
    thread_aas_manager.join()
    publish_state("stopping")
    publish_state("idle")
    producer.close()


if __name__ == "__main__":
    main()
