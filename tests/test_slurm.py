"""The slurm/ scripts on a REAL single-node Slurm, started by this test and stopped after.

Debian's slurm-wlm and munge are installed with apt-get when missing; the test skips (with the
reason) where that is impossible. Settings follow docs/design.md section 5.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

from conftest import REPO, apt_install, cli_env

SLURM_PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")

CONF = """ClusterName=aptcnntest
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
SchedulerParameters=batch_sched_delay=0
{node} State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


def _node_line() -> str:
    """This machine as `slurmd -C` sees it, renamed localhost, memory at 90 % (overstating
    CPUs or memory drains the node for good)."""
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, timeout=60).stdout
    line = next(l for l in out.splitlines() if l.startswith("NodeName="))
    mem = int(re.search(r"RealMemory=(\d+)", line).group(1))
    line = re.sub(r"NodeName=\S+", "NodeName=localhost NodeAddr=127.0.0.1", line)
    return re.sub(r"RealMemory=\d+", f"RealMemory={int(mem * 0.9)}", line)


def _munge_running() -> bool:
    if not shutil.which("munge"):
        return False
    cred = subprocess.run(["munge", "-n"], capture_output=True, timeout=30)
    return cred.returncode == 0 and subprocess.run(["unmunge"], input=cred.stdout, capture_output=True,
                                                   timeout=30).returncode == 0


def _wait(predicate, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("starting slurmctld, slurmd and munged needs root")
    for probe in ("slurmctld", "slurmd", "sbatch", "munged"):
        reason = apt_install(*SLURM_PACKAGES, probe=probe)
        if reason:
            pytest.skip(reason)
    d = tmp_path_factory.mktemp("slurm")
    started = []
    if not _munge_running():
        Path("/run/munge").mkdir(exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        if not Path("/etc/munge/munge.key").exists():
            subprocess.run(["mungekey", "--create"], check=True, timeout=60)
            shutil.chown("/etc/munge/munge.key", "munge", "munge")
        subprocess.run(["runuser", "-u", "munge", "--", "munged"], check=True, timeout=60)
        started.append(Path("/run/munge/munged.pid"))
        _wait(_munge_running, 30, "munged")
    for sub in ("state", "spool"):
        (d / sub).mkdir()
    conf = d / "slurm.conf"
    conf.write_text(CONF.format(d=d, node=_node_line()))
    env = dict(cli_env(), SLURM_CONF=str(conf))
    daemons = [subprocess.Popen(["slurmctld", "-D", "-i", "-f", str(conf)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    daemons.append(subprocess.Popen(["slurmd", "-D", "-N", "localhost", "-f", str(conf)], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def node_idle():
        state = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True).stdout
        return state.strip() == "idle"
    try:
        _wait(node_idle, 60, f"an idle Slurm node (logs in {d})")
        yield {"env": env, "dir": d}
    finally:
        subprocess.run(["scancel", "--user", "root"], env=env, capture_output=True)
        time.sleep(0.5)
        for p in reversed(daemons):
            p.terminate()
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        for pidfile in started:
            if pidfile.exists():
                subprocess.run(["kill", pidfile.read_text().strip()], capture_output=True)


def _submit(slurm, script: str, workdir: Path, **variables) -> str:
    """sbatch --wait the script with VARIABLES in its environment; returns its log."""
    env = dict(slurm["env"], APT_CNN_VENV=str(Path(sys.executable).parent.parent),
               **{k: str(v) for k, v in variables.items()})
    log = workdir / f"{script}.log"
    proc = subprocess.run(["sbatch", "--wait", f"--chdir={workdir}", f"--output={log}",
                           str(REPO / "slurm" / script)], env=env, capture_output=True, text=True, timeout=1200)
    text = log.read_text() if log.exists() else ""
    assert proc.returncode == 0, f"{script}: {proc.stdout}{proc.stderr}\n{text[-3000:]}"
    assert "Traceback" not in text
    return text


def test_every_script_runs_on_a_real_slurm(slurm, small_specimen, tmp_path):
    text = _submit(slurm, "simulate.sbatch", tmp_path, OUT="dict.h5", COUNTS="64 64 16", SEED=5)
    assert "2 tasks" in text
    with h5py.File(tmp_path / "dict.h5") as f:
        assert len(f["maps"]) == 144

    _submit(slurm, "train.sbatch", tmp_path, DICTIONARY="dict.h5", OUT="model", EPOCHS=1, FOLDS=1,
            EXTRA_ARGS="--batch 8 --skip-heldout")
    assert (tmp_path / "model" / "model.keras").is_file() and (tmp_path / "model" / "model_card.json").is_file()

    _submit(slurm, "scan.sbatch", tmp_path, INPUT=f"{small_specimen}.pos", RANGE=f"{small_specimen}.rrng",
            OUT="scan.h5", MEMORY_BUDGET=2000)
    with h5py.File(tmp_path / "scan.h5") as f:
        assert f.attrs["n_ranks"] == 2 and f"precipitates/{f['precipitates'].attrs['default']}/ion_precipitate_id" in f
        timings = json.loads(f["provenance"].attrs["json"])["timings_per_rank"]
        assert [t["memory_budget_mb"] for t in timings] == [2000.0, 2000.0]
    assert (tmp_path / "scan_report" / "index.html").is_file()

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copyfile(f"{small_specimen}.pos", inbox / "run1.pos")
    shutil.copyfile(f"{small_specimen}.rrng", inbox / "run1.rrng")
    text = _submit(slurm, "reprocess.sbatch", tmp_path, INBOX=inbox, OUTBOX=tmp_path / "outbox")
    assert "1 done" in text
    assert (tmp_path / "outbox" / "run1" / "report" / "index.html").is_file()


@pytest.mark.parametrize("slurm_env, budget", [({"SLURM_MEM_PER_CPU": "2048", "SLURM_CPUS_PER_TASK": "2"}, "3686"),
                                               ({"SLURM_MEM_PER_NODE": "16000", "SLURM_NTASKS_PER_NODE": "4"}, "3600"),
                                               ({"SLURM_MEM_PER_CPU": "2048", "MEMORY_BUDGET": "1000"}, "1000"),
                                               ({}, None)])
def test_scan_script_sets_the_memory_budget_from_the_allocation(tmp_path, slurm_env, budget):
    """scan.sbatch hands the scan 90 % of the job's memory per task (or MEMORY_BUDGET) as its budget."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "apt-cnn").write_text(f'#!/bin/bash\necho "$@" >> {tmp_path}/calls\n')
    (fake / "apt-cnn").chmod(0o755)
    env = {"PATH": f"{fake}:/usr/bin:/bin", "INPUT": "r.pos", "RANGE": "r.rrng", "SEGMENT": "0", "LAUNCH": " ",
           "APT_CNN_VENV": str(tmp_path / "none"), **slurm_env}
    proc = subprocess.run(["bash", str(REPO / "slurm" / "scan.sbatch")], env=env, cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    scan = [c for c in (tmp_path / "calls").read_text().splitlines() if c.startswith("scan ")][0].split()
    assert (scan[scan.index("--memory-budget") + 1] if "--memory-budget" in scan else None) == budget
