"""pip as a user's machine of another platform would run it: `python -m locking.foreign_pip MARKERS_JSON PIP_ARGS...`.

pip picks files for another platform with `--platform` and `--python-version`, but evaluates environment markers
against the interpreter running it (pypa/pip#11664): on Linux, a macOS resolution would take Linux-only
dependencies and miss macOS-only ones. This runs the lock's pip with the marker environment replaced by the
target's (the workaround Pex uses for the same bug), and with no configuration file at all: `--isolated` skips the
user's file and PIP_* variables but still reads the global ones (/etc/pip.conf), which on a developer's machine may
add indexes, find-links or constraints that a user's machine does not have. Both replace pip internals, so the
lock pins pip and tests/unit/locking/test_foreign_pip.py checks them on that version.
"""

from __future__ import annotations

import json
import sys

from pip._internal.configuration import Configuration
from pip._vendor.packaging import markers


def main(argv: list[str]) -> int:
    target = json.loads(argv[0])
    host = markers.default_environment()
    markers.default_environment = lambda: {**host, **target}
    files = Configuration.iter_config_files
    Configuration.iter_config_files = lambda self: ((kind, []) for kind, _ in files(self))
    # Imported after the patch: modules that import default_environment by name (the --report writer) see it too.
    from pip._internal.cli.main import main as pip

    return pip(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
