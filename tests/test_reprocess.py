"""Scheduled reprocessing: each run once, a corrupt run fails alone, a locked run is left alone."""
import json
import shutil
from pathlib import Path

import h5py

from apt_cnn_hpc.reprocess.manifest import Manifest

from conftest import run_cli


def _pass(inbox, outbox):
    proc = run_cli("reprocess", "--inbox", inbox, "--outbox", outbox, "--ranks", 2)
    assert "Traceback" not in proc.stderr
    return proc


def test_reprocess_runs_each_run_once_and_isolates_failures(small_specimen, tmp_path):
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    for name in ("run_a", "run_b", "run_c"):
        shutil.copyfile(f"{small_specimen}.pos", inbox / f"{name}.pos")
        shutil.copyfile(f"{small_specimen}.rrng", inbox / f"{name}.rrng")
    raw = (inbox / "run_c.pos").read_bytes()
    (inbox / "run_c.pos").write_bytes(raw[: len(raw) // 2 + 5])      # truncated mid-record
    shutil.copyfile(f"{small_specimen}.pos", inbox / "run_d.pos")     # no range file yet

    outbox.mkdir()
    with Manifest(outbox).claim("run_a") as mine:                     # another schedule holds run_a
        assert mine
        first = _pass(inbox, outbox)
    assert first.returncode == 1, first.stderr[-3000:]
    assert "run_a: being processed by another reprocess" in first.stderr
    assert "run_d.pos: no range file" in first.stderr
    assert not (outbox / "run_a").exists()
    scan_b = outbox / "run_b" / "run_b_scan.h5"
    with h5py.File(scan_b) as f:
        assert f"precipitates/{f['precipitates'].attrs['default']}/ion_precipitate_id" in f
    assert (outbox / "run_b" / "report" / "index.html").is_file()
    assert not (outbox / "run_c").exists()                             # nothing half-written
    runs = json.loads((outbox / "manifest.json").read_text())["runs"]
    assert runs["run_b"]["status"] == "done" and runs["run_c"]["status"] == "failed"
    assert "run_c.pos" in runs["run_c"]["error"] and "scan exited with 2" in runs["run_c"]["error"]
    stamp_b = scan_b.stat().st_mtime_ns

    second = _pass(inbox, outbox)
    assert second.returncode == 1
    assert "run_b: up to date" in second.stderr and "1 done, 1 current, 1 failed" in second.stderr
    assert (outbox / "run_a" / "run_a_scan.h5").is_file()
    assert scan_b.stat().st_mtime_ns == stamp_b

    (inbox / "run_c.pos").unlink()
    third = _pass(inbox, outbox)
    assert third.returncode == 0, third.stderr[-2000:]
    assert "0 done, 2 current, 0 failed" in third.stderr
    assert scan_b.stat().st_mtime_ns == stamp_b
    runs = json.loads((outbox / "manifest.json").read_text())["runs"]
    assert {k: v["status"] for k, v in runs.items()} == {"run_a": "done", "run_b": "done", "run_c": "failed"}
    assert runs["run_a"]["key"]["input_sha256"] == runs["run_b"]["key"]["input_sha256"]


def test_reprocess_redoes_a_run_whose_range_file_changed(small_specimen, tmp_path):
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    shutil.copyfile(f"{small_specimen}.pos", inbox / "r.pos")
    shutil.copyfile(f"{small_specimen}.rrng", inbox / "r.rrng")
    assert run_cli("reprocess", "--inbox", inbox, "--outbox", outbox).returncode == 0
    before = json.loads((outbox / "manifest.json").read_text())["runs"]["r"]["key"]
    text = Path(inbox / "r.rrng").read_text()
    Path(inbox / "r.rrng").write_text(text + "\n")
    proc = run_cli("reprocess", "--inbox", inbox, "--outbox", outbox)
    assert proc.returncode == 0 and "1 done, 0 current" in proc.stderr, proc.stderr[-2000:]
    after = json.loads((outbox / "manifest.json").read_text())["runs"]["r"]["key"]
    assert after["range_sha256"] != before["range_sha256"] and after["input_sha256"] == before["input_sha256"]
