"""Restart support: one small file per finished cube z-layer of a tile, next to the output.

The files are keyed by cube z-origin and the tile's x-y cube origins, not by rank, so a restart with
another number of ranks reuses every layer of a tile it cuts the same way (z-slabs of the same
cross-section; the same decomposition always). `meta.json` holds the hashes of input, ranges, config
and model; a run with any of them changed starts afresh."""
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

    @staticmethod
    def key(tile, kz) -> tuple:
        (i0, i1), (j0, j1) = tile
        return int(kz), int(i0), int(i1), int(j0), int(j1)

    def done(self) -> dict:
        """{key(tile, kz): path} of every finished layer."""
        return {tuple(int(v) for v in p.stem.split("_")[1:]): p for p in self.dir.glob("layers_*.npz")}

    def save(self, key: tuple, **arrays):
        name = "_".join(str(v) for v in key)
        tmp = self.dir / f".tmp_{name}.npz"
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        tmp.replace(self.dir / f"layers_{name}.npz")

    def remove(self):
        if self.comm.Get_rank() == 0:
            shutil.rmtree(self.dir, ignore_errors=True)
