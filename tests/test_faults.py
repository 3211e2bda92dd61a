"""Faults: a rank that dies ends the whole job; a full disk or an unwritable output directory gives
one clear line and leaves earlier results intact. (Killed scans and trainings resuming are in
test_scan.py and test_train.py.)"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import assert_clean_error, cli_env, mpiexec, run_cli


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    kids = [int(p) for p in out.split()]
    return kids + [g for k in kids for g in _children(k)]


def test_a_dead_rank_ends_the_job_with_a_message(small_specimen, tmp_path):
    out = tmp_path / "scan.h5"
    cmd = [mpiexec(), "-n", "2", sys.executable, "-m", "apt_cnn_hpc", "scan", f"{small_specimen}.pos",
           "--range", f"{small_specimen}.rrng", "--out", out]
    job = subprocess.Popen(cmd, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    end = time.time() + 300
    while not Path(f"{out}.partial").exists() and time.time() < end and job.poll() is None:
        time.sleep(0.1)                                   # the ranks are at work
    ranks = [p for p in _children(job.pid)
             if "apt_cnn_hpc" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")]
    assert len(ranks) == 2, ranks
    os.kill(ranks[1], signal.SIGKILL)
    t0 = time.time()
    try:
        stdout, stderr = job.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        job.kill()
        pytest.fail("the surviving rank hangs after its partner died")
    print(f"job ended {time.time() - t0:.1f} s after the kill")
    assert job.returncode != 0
    assert "signal 9" in stderr or "Killed" in stderr, stderr[-2000:]
    assert not out.exists()
    for p in ranks:
        assert not Path(f"/proc/{p}").exists() or "State:\tZ" in Path(f"/proc/{p}/status").read_text()


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs (root only): the scan's output cannot fit."""
    d = tmp_path / "disk"
    d.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(d)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    yield d
    subprocess.run(["umount", "-l", str(d)], capture_output=True)


def test_full_disk_keeps_earlier_results(small_specimen, tiny_disk):
    earlier = tiny_disk / "scan.h5"
    earlier.write_bytes(b"an earlier scan" * 1000)
    before = earlier.read_bytes()
    proc = run_cli("scan", f"{small_specimen}.pos", "--range", f"{small_specimen}.rrng", "--out", earlier,
                   "--overwrite")
    assert_clean_error(proc, "scan.h5", "No space left on device")   # the checkpoint or the output
    assert earlier.read_bytes() == before
    assert [p.name for p in tiny_disk.iterdir() if p.name != "scan.h5" and not p.name.endswith(".partial")] == []


def test_unwritable_output_directory(small_specimen, tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    (d / "earlier.h5").write_text("earlier")
    if os.geteuid() == 0:       # root ignores permission bits: make the directory a read-only mount
        proc = subprocess.run(["mount", "--bind", "-o", "ro", str(d), str(d)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot make a read-only mount here: {proc.stderr.strip()}")
        subprocess.run(["mount", "-o", "remount,bind,ro", str(d)], capture_output=True)
    else:
        d.chmod(0o555)
    try:
        for args in (["scan", f"{small_specimen}.pos", "--range", f"{small_specimen}.rrng", "--out", d / "s.h5"],
                     ["specimen", "--size", 8, 8, 8, "--out", d / "spec"],
                     ["sdm", f"{small_specimen}.pos", "--range", f"{small_specimen}.rrng", "--box", 2, 2, 2, 8, 8, 8,
                      "--out", d / "map"]):
            assert_clean_error(run_cli(*args), str(d), "not writable")
        assert sorted(p.name for p in d.iterdir()) == ["earlier.h5"]
        assert (d / "earlier.h5").read_text() == "earlier"
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(d)], capture_output=True)
        else:
            d.chmod(0o755)


def test_a_killed_runs_temporaries_are_removed_and_live_ones_kept(tmp_path):
    """What a run killed while writing left (its temporary file, or directory, of this host and a
    process that is gone) goes when the output is next written; another host's or a live process's
    stays."""
    import socket
    from apt_cnn_hpc.fileutil import atomic_directory, atomic_output
    host = socket.gethostname()
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = tmp_path / f".out.h5.tmp-{host}-{gone.pid}"
    stale.write_bytes(b"x" * 1000)
    live = tmp_path / f".out.h5.tmp-{host}-{os.getppid()}"
    live.write_bytes(b"x")
    other = tmp_path / ".out.h5.tmp-another-node-1"
    other.write_bytes(b"x")
    stale_dir = tmp_path / f".models.tmp-{host}-{gone.pid}"
    stale_dir.mkdir()
    (stale_dir / "a").write_bytes(b"x")
    with atomic_output(tmp_path / "out.h5") as tmp:
        Path(tmp).write_bytes(b"done")
    with atomic_directory(tmp_path / "models") as d:
        (Path(d) / "card.json").write_text("{}")
    assert (tmp_path / "out.h5").read_bytes() == b"done" and (tmp_path / "models" / "card.json").exists()
    assert not stale.exists() and not stale_dir.exists()
    assert live.exists() and other.exists()
