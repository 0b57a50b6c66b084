"""The Python code of the SDK's `.proto`: built by `make proto`, else on first import.

`make proto` (part of `make install`) runs this file, `python -P src/shopfloor/sdk/_protos.py`,
which compiles `proto/agent.proto` with `grpc_tools.protoc` into `_generated/agent_pb2.py`
and its `.pyi`. `_generated/` is not committed. Where it is missing or stale (an
installed wheel built without it, a checkout that skipped `make`, an edited proto),
`load()` generates it the first time `shopfloor.sdk` is imported: under a file lock,
since several agents may start at once, and written whole, so a process never imports
half a file. A package folder this process cannot write (a system-wide install) gets
the code generated into a temporary folder of its own instead, every start.

Stale means the stamp `_generated/STAMP` (the proto's SHA-256 and the grpcio-tools
version) differs from the proto and the protoc at hand; without grpcio-tools, what is
there is used as it is.

The proto is compiled under the name `shopfloor/agent/v1/agent.proto`, the name it has
in protobuf's descriptor pool, so it cannot clash with another package's `agent.proto`.

This file imports nothing of Shopfloor's, so `make` can run it before the package
imports.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import importlib.metadata
import os
import shutil
import sys
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path

__all__ = ["GENERATED_DIR", "PROTO_FILE", "ProtoBuildError", "generate", "load", "stale"]

HERE = Path(__file__).resolve().parent
PROTO_FILE = HERE / "proto" / "agent.proto"
GENERATED_DIR = HERE / "_generated"
#: Where the proto sits for protoc, and so its name in the descriptor pool.
PROTO_NAME = "shopfloor/agent/v1/agent.proto"
OUTPUTS = ("agent_pb2.py", "agent_pb2.pyi")
STAMP = "STAMP"
PACKAGE = "shopfloor.sdk._generated"


class ProtoBuildError(RuntimeError):
    """protoc failed, or grpcio-tools is missing where the code has to be generated."""


def wanted_stamp() -> str | None:
    """What `STAMP` holds when the generated code is current; None without grpcio-tools."""
    try:
        tools = importlib.metadata.version("grpcio-tools")
    except importlib.metadata.PackageNotFoundError:
        return None
    digest = hashlib.sha256(PROTO_FILE.read_bytes()).hexdigest()
    return f"{digest} grpcio-tools {tools}\n"


def stale(folder: Path = GENERATED_DIR) -> bool:
    """Whether `folder` lacks the generated code, or holds code of another proto or protoc."""
    if not all((folder / name).is_file() for name in OUTPUTS):
        return True
    wanted = wanted_stamp()
    if wanted is None:
        return False
    try:
        return (folder / STAMP).read_text(encoding="utf-8") != wanted
    except OSError:
        return True


def generate(folder: Path = GENERATED_DIR) -> None:
    """Compile the proto into `folder` (made if missing), whole files only, stamp last."""
    try:
        from grpc_tools import protoc
    except ImportError as exc:
        raise ProtoBuildError(
            "the SDK's generated gRPC code is missing and grpcio-tools is not installed"
        ) from exc
    stamp = wanted_stamp()
    assert stamp is not None, "grpcio-tools imports, so it is installed"
    includes = Path(protoc.__file__).parent / "_proto"  # the well-known types
    with tempfile.TemporaryDirectory(prefix="shopfloor-proto-") as tmp:
        source = Path(tmp, "in", PROTO_NAME)
        source.parent.mkdir(parents=True)
        shutil.copyfile(PROTO_FILE, source)
        out = Path(tmp, "out")
        out.mkdir()
        status = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{Path(tmp, 'in')}",
                f"-I{includes}",
                f"--python_out={out}",
                f"--pyi_out={out}",
                str(source),
            ]
        )
        if status != 0:
            raise ProtoBuildError(f"protoc failed on {PROTO_FILE} (status {status})")
        folder.mkdir(parents=True, exist_ok=True)
        compiled = out / Path(PROTO_NAME).parent
        for name in OUTPUTS:
            _write_whole(folder / name, (compiled / name).read_bytes())
        _write_whole(folder / "__init__.py", b'"""Generated from proto/: not committed."""\n')
        _write_whole(folder / STAMP, stamp.encode())


def load(folder: Path | None = None) -> types.ModuleType:
    """`agent_pb2` from `folder` (`_generated/`), generated first where it is missing or
    stale; from a temporary folder when `folder` cannot be written."""
    folder = GENERATED_DIR if folder is None else folder
    if stale(folder):
        try:
            with _locked(folder):
                if stale(folder):  # another process may have generated it while this one waited
                    generate(folder)
        except OSError:  # a folder this process cannot write (read-only install)
            folder = Path(tempfile.mkdtemp(prefix="shopfloor-proto-"))
            generate(folder)
            package = types.ModuleType(PACKAGE, "Generated from proto/ at start: not committed.")
            package.__path__ = [str(folder)]
            sys.modules[PACKAGE] = package
    return importlib.import_module(f"{PACKAGE}.agent_pb2")


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _write_whole(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_bytes(data)
    os.replace(partial, path)


if __name__ == "__main__":
    generate()
    print(f"generated {', '.join(OUTPUTS)} in {GENERATED_DIR}")
