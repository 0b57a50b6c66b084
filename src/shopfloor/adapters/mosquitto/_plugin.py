"""Building the publisher identity plugin (C, shipped as source) for the local Mosquitto.

The plugin is compiled on the machine that runs Mosquitto, against that machine's
`mosquitto_broker.h` (Debian/Ubuntu: packages `mosquitto-dev` and `libmosquitto-dev`),
so it always matches the broker's plugin interface. Builds are cached by a hash of the
source and the compiler command, and written atomically: concurrent builders are safe.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from ._errors import PluginBuildError

__all__ = ["PLUGIN_FLAGS", "build_plugin", "plugin_source"]

PLUGIN_FLAGS = ("-shared", "-fPIC", "-O2", "-Wall", "-Wextra")
_SOURCE_NAME = "shopfloor_publisher.c"


def plugin_source() -> bytes:
    """The plugin's C source, as shipped inside the package."""
    return resources.files(__package__).joinpath("plugin", _SOURCE_NAME).read_bytes()


def build_plugin(out_dir: Path, *, compiler: str = "gcc") -> Path:
    """Compile the plugin into `out_dir` unless an identical build is there; its path.

    The file is made readable by every user; `out_dir` (and the folders above it) must
    be open to the broker's user too (`shopfloor mosquitto check` says so).
    """
    source = plugin_source()
    recipe = hashlib.sha256(source)
    recipe.update("\0".join((compiler, *PLUGIN_FLAGS)).encode())
    target = out_dir / f"shopfloor_publisher-{recipe.hexdigest()[:16]}.so"
    if target.is_file():
        return target
    executable = shutil.which(compiler)
    if executable is None:
        raise PluginBuildError(f"C compiler {compiler!r} not found; install gcc")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".build-") as work:
        source_path = Path(work) / _SOURCE_NAME
        source_path.write_bytes(source)
        built = Path(work) / "plugin.so"
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [executable, *PLUGIN_FLAGS, "-o", str(built), str(source_path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            hint = ""
            if "mosquitto_broker.h" in result.stderr or "mosquitto.h" in result.stderr:
                hint = " (install the Mosquitto headers: mosquitto-dev and libmosquitto-dev)"
            raise PluginBuildError(
                f"compiling the publisher plugin failed{hint}:\n{result.stderr.strip()}"
            )
        # Readable by everyone whatever the umask: Mosquitto loads plugins after it
        # switched from root to its own user.
        built.chmod(0o755)
        os.replace(built, target)
    return target
