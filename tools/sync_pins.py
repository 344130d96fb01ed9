"""Give the hand-picked pinned files the lock's versions and hashes: `python -m tools.sync_pins` (run by `make lock`).

requirements-dev.lock (pip-compile --generate-hashes) is the one source of versions and hashes. The serving image,
the Lambda package and the SageMaker job each install a chosen subset of it (what their platform does not already
bring); which names a file lists is decided by hand, their `==` versions and `--hash` options are copied from the
lock. Because every line carries hashes, pip installs those files in hash-checking mode (`--require-hashes` is
implied) and refuses any file, direct or transitive, that the lock did not record.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCK = REPO_ROOT / "requirements-dev.lock"
SUBSET_FILES = ("model/serving/requirements-serve.txt", "chalice_app/requirements.txt",
                "training_jobs/requirements-sagemaker.txt")
HASH = re.compile(r"--hash=(sha256:[0-9a-f]{64})")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def entries(text: str) -> list[str]:
    """Requirement lines as pip reads them: continuations joined, comments and blank lines dropped."""
    lines = [re.sub(r"(^|\s)#.*", "", line).split() for line in re.sub(r"\\\n", " ", text).splitlines()]
    return [" ".join(words) for words in lines if words]


def spelled_name(entry: str) -> str:
    """The project name as the entry writes it (no extras, specifier or options)."""
    return re.split(r"[\[=<>~!;\s]", entry, maxsplit=1)[0]


def requirement_name(entry: str) -> str:
    return canonical(spelled_name(entry))


def pins(text: str) -> dict[str, str]:
    """name -> version of the `name==version` entries (extras dropped); unpinned names are not pins."""
    specs = [entry.split()[0] for entry in entries(text)]
    return {requirement_name(spec): spec.split("==", 1)[1] for spec in specs if "==" in spec}


def hashes(text: str) -> dict[str, frozenset[str]]:
    """name -> the `--hash` values of its entry (empty when it has none)."""
    return {requirement_name(entry): frozenset(HASH.findall(entry)) for entry in entries(text)}


def locked_entry(name: str, version: str, digests: frozenset[str]) -> str:
    """One entry in pip-compile's layout: the pin, then one `--hash` per line."""
    return " \\\n    ".join([f"{name}=={version}", *(f"--hash={digest}" for digest in sorted(digests))])


def synced(text: str, lock_text: str) -> str:
    """`text` with every entry replaced by the lock's version and hashes of that name; comments kept."""
    versions, digests = pins(lock_text), hashes(lock_text)
    out: list[str] = []
    for block in re.split(r"(?<!\\)\n", text.rstrip("\n")):
        if not entries(block) or block.lstrip().startswith("#"):
            out.append(block)
            continue
        name = requirement_name(block.strip())
        if name not in versions:
            raise SystemExit(f"{name} is not in {LOCK.name}: add it to requirements-dev.txt and run `make lock`")
        out.append(locked_entry(spelled_name(block.strip()), versions[name], digests[name]))
    return "\n".join(out) + "\n"


def main() -> None:
    lock_text = LOCK.read_text()
    for relative in SUBSET_FILES:
        path = REPO_ROOT / relative
        path.write_text(synced(path.read_text(), lock_text))


if __name__ == "__main__":
    main()
