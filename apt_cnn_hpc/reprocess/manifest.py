"""The outbox's JSON manifest and the locks that keep two schedules off the same run.

manifest.json: {"runs": {NAME: {"key": {input, range, config, model SHA-256}, "status": "done" |
"failed", "error", "outputs", "finished_utc", "software_version"}}}. A run is current when its
entry is "done" with the same key. Each run is processed under an exclusive, non-blocking
`flock` on outbox/.locks/NAME.lock (released by the kernel if the process dies); the manifest
itself is read-modify-written under outbox/.locks/manifest.lock.
"""
import contextlib
import fcntl
import json
import os
from pathlib import Path

from ..errors import InputError
from ..fileutil import atomic_output


class Manifest:
    def __init__(self, outbox: Path):
        self.path = outbox / "manifest.json"
        self.locks = outbox / ".locks"
        self.locks.mkdir(exist_ok=True)

    def _read(self) -> dict:
        if not self.path.exists():
            return {"runs": {}}
        try:
            data = json.loads(self.path.read_text())
        except json.JSONDecodeError:
            raise InputError(self.path, "manifest is not valid JSON (fix or remove it)") from None
        if not isinstance(data, dict) or not isinstance(data.get("runs"), dict):
            raise InputError(self.path, "manifest has no 'runs' mapping (fix or remove it)")
        return data

    def entry(self, name: str) -> dict | None:
        with self._locked("manifest"):
            return self._read()["runs"].get(name)

    def is_current(self, name: str, key: dict) -> bool:
        e = self.entry(name)
        return bool(e) and e.get("status") == "done" and e.get("key") == key

    def record(self, name: str, entry: dict):
        with self._locked("manifest"):
            data = self._read()
            data["runs"][name] = entry
            with atomic_output(self.path) as tmp:
                Path(tmp).write_text(json.dumps(data, indent=1, sort_keys=True))

    @contextlib.contextmanager
    def _locked(self, name: str):
        fd = os.open(self.locks / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def claim(self, name: str):
        """Yield True if this process now owns run `name`, False if another process does."""
        fd = os.open(self.locks / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)
