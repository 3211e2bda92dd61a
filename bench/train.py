"""Training throughput: maps/s for 1 and 2 Horovod ranks measured in the same run, and the wall
time of one epoch of the full default dictionary at the 2-rank rate.

  python bench/train.py [--steps 40]        (prints JSON)
The worker mode (--worker, under mpiexec) times the same custom step that `apt-cnn train` uses.
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from apt_cnn_hpc.parallel.launcher import local_env, mpiexec

REPO = Path(__file__).resolve().parent.parent


def worker(steps: int, batch: int):
    from apt_cnn_hpc.model.train import Trainer
    from apt_cnn_hpc.parallel import comm_world
    from apt_cnn_hpc.parallel.mpi import configure_tensorflow
    comm = comm_world()
    configure_tensorflow(comm)
    import horovod.tensorflow as hvd
    hvd.init(comm=comm)
    rng = np.random.default_rng(comm.Get_rank())
    x = rng.random((batch, 150, 150, 1), dtype=np.float32)
    y = (rng.random((batch, 1)) < 0.5).astype(np.float32)
    t = Trainer(comm, hvd, 150, 0.001 * comm.Get_size(), 0)
    t.broadcast()
    for _ in range(3):
        t.step(x, y)  # compile, warm up
    comm.Barrier()
    t0 = time.perf_counter()
    for _ in range(steps):
        t.step(x, y)
    comm.Barrier()
    dt = time.perf_counter() - t0
    if comm.Get_rank() == 0:
        print(json.dumps({"ranks": comm.Get_size(), "maps_per_s": steps * batch * comm.Get_size() / dt}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=32)
    a = ap.parse_args()
    if a.worker:
        return worker(a.steps, a.batch)
    env = local_env()
    rates = {}
    for n in (1, 2):
        out = subprocess.run([mpiexec(), "-n", str(n), sys.executable, __file__, "--worker",
                              "--steps", str(a.steps), "--batch", str(a.batch)],
                             env=env, capture_output=True, text=True, check=True).stdout
        rates[n] = json.loads(out.strip().splitlines()[-1])["maps_per_s"]
    import yaml
    counts = yaml.safe_load((REPO / "configs" / "library.yaml").read_text())["counts"]
    n_train = int(round(sum(counts.values()) * 0.9))
    print(json.dumps({
        "batch_per_rank": a.batch, "steps": a.steps,
        "maps_per_s_1_rank": round(rates[1], 1), "maps_per_s_2_ranks": round(rates[2], 1),
        "speedup_2_vs_1": round(rates[2] / rates[1], 3),
        "efficiency_2_ranks": round(rates[2] / (2 * rates[1]), 3),
        "full_dictionary_train_maps": n_train,
        "epoch_seconds_2_ranks": round(n_train / rates[2], 1),
        "note": "epoch time = training maps / measured 2-rank rate (data loading excluded)",
    }, indent=2))


if __name__ == "__main__":
    main()
