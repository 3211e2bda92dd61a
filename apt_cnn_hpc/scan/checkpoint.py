"""Restart support: one small file per finished chunk of cube z-layers, next to the output.

The files are keyed by cube z-origin, not by rank, so a restart with another number of ranks
still reuses them. `meta.json` holds the hashes of input, ranges, config and model; a run with any
of them changed starts afresh.
"""
import json
import shutil
from pathlib import Path

import numpy as np


class Checkpoints:
    def __init__(self, out, meta: dict, comm):
        self.dir = Path(f"{out}.partial")
        self.comm = comm
        meta = json.loads(json.dumps(meta))  # as it reads back (tuples become lists)
        if comm.Get_rank() == 0:
            old = self.dir / "meta.json"
            if self.dir.exists() and (not old.exists() or json.loads(old.read_text()) != meta):
                shutil.rmtree(self.dir)
            self.dir.mkdir(exist_ok=True)
            (self.dir / "meta.json").write_text(json.dumps(meta))
        comm.Barrier()

    def _path(self, k0, k1):
        return self.dir / f"layers_{k0}_{k1}.npz"

    def done(self) -> dict:
        """{(k0, k1): path} of every finished chunk."""
        out = {}
        for p in self.dir.glob("layers_*.npz"):
            _, a, b = p.stem.split("_")
            out[(int(a), int(b))] = p
        return out

    def save(self, k0, k1, **arrays):
        tmp = self.dir / f".tmp_{k0}_{k1}.npz"
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        tmp.replace(self._path(k0, k1))

    def remove(self):
        if self.comm.Get_rank() == 0:
            shutil.rmtree(self.dir, ignore_errors=True)
