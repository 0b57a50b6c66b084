"""Real servers of each protocol, playing one machine: a temperature the machine changes,
a speed, a writable setpoint and (where the protocol has methods) `start(speed)`.

Each listens on a free port of 127.0.0.1 chosen once, so `stop()` then `start()` brings
it back where its connector looks for it. Options in the URLs make reconnects and
heartbeats fast enough for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import shutil
import socket
import struct
from abc import ABC, abstractmethod
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiomqtt
import uvicorn
from asyncua import ua
from asyncua.common.methods import uamethod
from asyncua.server.server import Server
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.serving import free_port, served_app

FAST = "timeout=2&heartbeat=0.2&reconnect_delay=0.05&reconnect_max=0.3"
TEMPERATURE, SPEED, SETPOINT = 20.5, 1200, 50.0
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


class Machine(ABC):
    """One machine behind one protocol, and the addresses its connector uses."""

    protocol: str
    url: str
    temperature: str
    speed: str
    setpoint: str  # written
    readback: str  # read after a write of `setpoint`
    start_method: str | None = None  # None: the protocol has no methods
    started: Any = None  # what `call(start_method, 900)` returns

    def __init__(self) -> None:
        self.port = free_port()

    def expected(self, value: Any) -> Any:
        """How a written value reads back."""
        return value

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    async def set_temperature(self, value: float) -> None:
        """The machine's own change of its temperature."""


class OpcUaMachine(Machine):
    protocol = "opcua"
    temperature = "ns=2;s=Temperature"
    speed = "/2:Machine/2:Speed"
    setpoint = readback = "ns=2;s=Setpoint"
    start_method = "/2:Machine/2:start"
    started = True

    def __init__(self, cache_dir: Path) -> None:
        super().__init__()
        self.url = f"opc.tcp://127.0.0.1:{self.port}/?{FAST}"
        self.cache_dir = cache_dir
        self.server: Server | None = None
        self.nodes: dict[str, Any] = {}

    async def start(self) -> None:
        server = Server()
        await server.init(shelf_file=await standard_address_space(self.cache_dir))
        server.disable_clock()  # its 1 s update loop would make every stop last a second
        server.set_endpoint(f"opc.tcp://127.0.0.1:{self.port}/")
        index = await server.register_namespace("urn:shopfloor:test-machine")
        machine = await server.nodes.objects.add_object(
            ua.NodeId("Machine", index), ua.QualifiedName("Machine", index)
        )
        values = {
            "Temperature": self.nodes.get("temperature_value", TEMPERATURE),
            "Speed": SPEED,
            "Setpoint": SETPOINT,
        }
        for name, value in values.items():
            variant = ua.Variant(value, ua.VariantType.Int32 if name == "Speed" else None)
            self.nodes[name] = await machine.add_variable(
                ua.NodeId(name, index), ua.QualifiedName(name, index), variant
            )
        await self.nodes["Setpoint"].set_writable()

        @uamethod  # type: ignore[untyped-decorator]
        async def start(parent: ua.NodeId, speed: int) -> bool:
            await self.nodes["Speed"].write_value(ua.Variant(speed, ua.VariantType.Int32))
            return True

        await machine.add_method(
            ua.NodeId("start", index), ua.QualifiedName("start", index), start,
            [ua.VariantType.Int32], [ua.VariantType.Boolean],
        )  # fmt: skip
        await server.start()
        self.server = server

    async def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            await server.stop()

    async def set_temperature(self, value: float) -> None:
        self.nodes["temperature_value"] = value
        await self.nodes["Temperature"].write_value(value)


class ModbusMachine(Machine):
    protocol = "modbus"
    temperature = "holding:40001:float32"
    speed = "input:30001"
    setpoint = readback = "holding:40011:float32"

    def __init__(self) -> None:
        super().__init__()
        self.url = f"modbus+tcp://127.0.0.1:{self.port}?unit=1&{FAST}"
        self.value = TEMPERATURE
        self.answering = asyncio.Event()  # cleared: keeps its connections, answers nothing
        self.answering.set()
        self.server: ModbusTcpServer | None = None

    async def _sensor(
        self, function_code: int, start: int, address: int, count: int,
        registers: list[int], values: Any,
    ) -> None:  # fmt: skip
        """The machine's own update: the temperature in holding registers 0 and 1."""
        await self.answering.wait()
        if function_code == 3:
            high, low = struct.unpack(">HH", struct.pack(">f", self.value))
            registers[0 - start], registers[1 - start] = high, low

    def device(self) -> SimDevice:
        return SimDevice(
            id=1,
            simdata=(
                [SimData(0, count=16, values=False, datatype=DataType.BITS)],  # coils
                [SimData(0, count=16, values=True, datatype=DataType.BITS)],  # discrete
                [SimData(0, count=32, values=0, datatype=DataType.REGISTERS)],  # holding
                [SimData(0, count=8, values=SPEED, datatype=DataType.REGISTERS)],  # input
            ),
            action=self._sensor,
        )

    async def start(self) -> None:
        server = ModbusTcpServer(self.device(), address=("127.0.0.1", self.port))
        await server.serve_forever(background=True)
        self.server = server

    async def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            await server.shutdown()

    async def set_temperature(self, value: float) -> None:
        self.value = value


class MqttMachine(Machine):
    """A real Mosquitto with a password file; the machine publishes retained values."""

    protocol = "mqtt"
    temperature = "press/temperature"
    speed = "press/speed"
    setpoint = readback = "press/setpoint"
    user, password = "press", "press-secret"

    def __init__(self, work_dir: Path) -> None:
        super().__init__()
        self.work_dir = work_dir
        self.url = f"mqtt://{self.user}:{self.password}@127.0.0.1:{self.port}?retain=true&{FAST}"
        self.process: asyncio.subprocess.Process | None = None
        self.value = TEMPERATURE

    async def start(self) -> None:
        passwords = self.work_dir / "passwords"
        if not passwords.exists():
            made = await asyncio.create_subprocess_exec(
                MOSQUITTO_PASSWD, "-b", "-c", str(passwords), self.user, self.password
            )
            assert await made.wait() == 0
        config = self.work_dir / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous false\n"
            f"password_file {passwords}\npersistence false\nuser {getpass.getuser()}\n"
        )
        self.process = await asyncio.create_subprocess_exec(
            MOSQUITTO, "-c", str(config),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        await wait_listening(self.port, self.process)
        await self.publish(self.temperature, self.value)
        await self.publish(self.speed, SPEED)

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()

    async def publish(self, topic: str, value: Any) -> None:
        async with aiomqtt.Client(
            "127.0.0.1", self.port, username=self.user, password=self.password, timeout=5
        ) as client:
            await client.publish(topic, str(value).encode(), qos=1, retain=True)

    async def set_temperature(self, value: float) -> None:
        self.value = value
        await self.publish(self.temperature, value)


class HttpMachine(Machine):
    """A Starlette app under uvicorn: JSON status, a setpoint, `POST /start`."""

    protocol = "http"
    temperature = "GET /status#/temperature"
    speed = "/status#/speed"
    setpoint = readback = "/setpoint"
    start_method = "/start#/running"
    started = True

    def __init__(self) -> None:
        super().__init__()
        self.url = f"http://127.0.0.1:{self.port}?health=/health&{FAST}"
        self.state: dict[str, Any] = {
            "temperature": TEMPERATURE, "speed": SPEED, "setpoint": SETPOINT,
        }  # fmt: skip
        self.requests: list[str] = []  # "METHOD /path" of every request served
        self.healthy = True
        self._stack: AsyncExitStack | None = None

    def app(self) -> Starlette:
        async def status(request: Request) -> JSONResponse:
            self.requests.append(f"GET {request.url.path}")
            if self.state.get("failing"):
                return JSONResponse({"error": "sensor bus down"}, status_code=500)
            return JSONResponse({"temperature": self.state["temperature"],
                                 "speed": self.state["speed"]})  # fmt: skip

        async def setpoint(request: Request) -> Response:
            if request.method == "PUT":
                value = await request.json()
                if isinstance(value, bool) or not isinstance(value, int | float):
                    return JSONResponse({"error": "a number, please"}, status_code=422)
                self.state["setpoint"] = value
                return Response(status_code=204)
            return JSONResponse(self.state["setpoint"])

        async def start(request: Request) -> JSONResponse:
            self.state["speed"] = await request.json()
            return JSONResponse({"running": True, "speed": self.state["speed"]})

        async def health(request: Request) -> JSONResponse:
            return JSONResponse({"status": "ok" if self.healthy else "starting"},
                                status_code=200 if self.healthy else 503)  # fmt: skip

        return Starlette(routes=[
            Route("/status", status), Route("/setpoint", setpoint, methods=["GET", "PUT"]),
            Route("/start", start, methods=["POST"]), Route("/health", health),
        ])  # fmt: skip

    async def start(self) -> None:
        config = uvicorn.Config(self.app(), log_level="warning", lifespan="off")
        self._stack = AsyncExitStack()
        await self._stack.enter_async_context(served_app(config, port=self.port))

    async def stop(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def set_temperature(self, value: float) -> None:
        self.state["temperature"] = value


class TcpMachine(Machine):
    """A line protocol on asyncio: `GET name`, `SET name value`, `START speed`, else echo."""

    protocol = "tcp"
    temperature = "GET temperature"
    speed = "GET speed"
    setpoint = "SET setpoint"
    readback = "GET setpoint"
    start_method = "START"
    started = "RUNNING 900"

    def __init__(self) -> None:
        super().__init__()
        self.url = f"tcp://127.0.0.1:{self.port}?framing=line&error=ERR&{FAST}"
        self.state: dict[str, str] = {
            "temperature": str(TEMPERATURE), "speed": str(SPEED), "setpoint": str(SETPOINT),
        }  # fmt: skip
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.mute = False  # keeps its connections, answers nothing

    def expected(self, value: Any) -> Any:
        return str(value)

    def answer(self, line: str) -> str:
        command, _, rest = line.partition(" ")
        if command == "GET":
            return self.state.get(rest, "ERR unknown")
        if command == "SET":
            name, _, value = rest.partition(" ")
            if name not in self.state:
                return "ERR unknown"
            self.state[name] = value
            return "OK"
        if command == "START":
            self.state["speed"] = rest
            return f"RUNNING {rest}"
        return line

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            while line := await reader.readline():
                if self.mute:
                    continue
                writer.write(self.answer(line.decode().rstrip("\r\n")).encode() + b"\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.close()
            for writer in list(self.writers):
                writer.transport.abort()  # a machine switched off drops its connections
            await server.wait_closed()

    async def set_temperature(self, value: float) -> None:
        self.state["temperature"] = str(value)


async def standard_address_space(cache_dir: Path) -> Path:
    """A shelf of OPC UA's standard address space, made once for the test session.

    Filling it takes a server's `init` 2 to 3 s; loading it from the shelf under 0.1 s.
    asyncua looks for the shelf as a file of that exact name, but the dbm it uses here
    stores it as `.dat` and `.dir` files beside it: an empty marker file bridges that.
    """
    shelf = cache_dir / "standard-address-space"
    if not shelf.is_file():
        maker = Server()
        await maker.init(shelf_file=shelf)
        shelf.touch()
    return shelf


async def wait_listening(port: int, process: asyncio.subprocess.Process) -> None:
    async with asyncio.timeout(10):
        while True:
            if process.returncode is not None:
                assert process.stderr is not None
                raise RuntimeError((await process.stderr.read()).decode(errors="replace"))
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            return


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
