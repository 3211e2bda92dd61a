"""What made an output: config, input hashes, model hash, software versions (stored in every file)."""
import datetime
import json
import os
import platform
import sys

from . import __version__
from .fileutil import sha256_file


def software_versions() -> dict:
    out = {"apt_cnn_hpc": __version__, "python": sys.version.split()[0]}
    for mod in ("numpy", "numba", "h5py", "mpi4py", "scipy", "tensorflow", "keras", "horovod",
                "ifes_apt_tc_data_modeling"):
        m = sys.modules.get(mod)
        if m is not None:
            out[mod] = getattr(m, "__version__", "?")
    return out


def provenance(config: dict, inputs: dict | None = None, model_sha256: str | None = None,
               hashes: dict | None = None, **extra) -> dict:
    """A JSON-able record; `inputs` maps a role to a path whose SHA-256 is taken (or given in
    `hashes`, for a file hashed while it was written)."""
    rec = {
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "command": " ".join(sys.argv),
        "software": software_versions(),
        "config": config,
        "inputs": {k: {"path": str(p), "abspath": os.path.abspath(p),
                       "sha256": (hashes or {}).get(k) or sha256_file(p)}
                   for k, p in (inputs or {}).items()},
    }
    if model_sha256:
        rec["model_sha256"] = model_sha256
    rec.update(extra)
    return rec


def write_h5_provenance(h5file, record: dict):
    """Store the record as a JSON string attribute of a /provenance group (readable anywhere)."""
    g = h5file.require_group("provenance")
    g.attrs["json"] = json.dumps(record, default=str)
    g.attrs["software_version"] = __version__
