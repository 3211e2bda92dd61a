"""`apt-cnn reprocess --inbox DIR --outbox DIR`: scan -> segment -> report for every new APT run.

Each stage runs as its own process (the scan under the MPI launcher), so a run that fails - bad
file, crash, killed rank - fails alone and the others still finish. A run's outputs are built
in outbox/.work/NAME (a killed scan resumes there from its checkpoints on the next pass) and
swapped into outbox/NAME only when all stages succeeded:

  outbox/NAME/NAME_scan.h5 (+ .xdmf, _comparison.json/.png), outbox/NAME/report/index.html,
  outbox/NAME/log.txt, outbox/manifest.json
"""
import datetime
import hashlib
import json
import logging
import os
import shlex
import subprocess
import sys
from pathlib import Path

from .. import __version__
from ..config import load_config
from ..errors import InputError
from ..parallel.launcher import mpiexec
from ..fileutil import sha256_file, swap_directory
from ..contracts.model_dir import load_card
from ..scan.run import DEFAULT_MODEL
from ..config import SegmentConfig
from .inbox import find_runs
from .manifest import Manifest

log = logging.getLogger(__name__)


class RunFailed(Exception):
    pass


def default_launcher(ranks: int) -> list:
    """mpiexec next to this Python (the venv's Open MPI) or on PATH; none for one rank."""
    if ranks <= 1:
        return []
    exe = mpiexec()
    if not exe:
        raise InputError(None, "--ranks > 1 needs mpiexec on PATH (or give --launcher)")
    return [exe, "-n", str(ranks)]


def _stage(cmd: list, logfile: Path, stage: str):
    """Run one stage, appending its output to the run's log; its one-line error if it fails."""
    env = dict(os.environ, APT_CNN_NO_PROGRESS="1")
    with open(logfile, "a") as fh:
        fh.write(f"$ {shlex.join(cmd)}\n")
        fh.flush()
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.PIPE, text=True, env=env)
        fh.write(proc.stderr)
    if proc.returncode != 0:
        lines = proc.stderr.splitlines()      # the stage's own one-line error before MPI's noise
        errors = [l for l in lines if l.startswith("apt-cnn ") and ": error: " in l] or \
            [l for l in lines if "error" in l.lower()]
        raise RunFailed(f"{stage} exited with {proc.returncode}: "
                        f"{errors[-1].strip() if errors else proc.stderr.strip()[-300:]}")


def process_run(run, outbox: Path, launcher: list, model_dir: Path, scan_config, segment_config_path) -> list:
    work = outbox / ".work" / run.name
    work.mkdir(parents=True, exist_ok=True)
    logfile = work / "log.txt"
    scan = work / f"{run.name}_scan.h5"
    apt = [sys.executable, "-m", "apt_cnn_hpc"]
    cmd = launcher + apt + ["scan", str(run.input), "--range", str(run.range), "--out", str(scan),
                            "--model", str(model_dir), "--overwrite"]
    _stage(cmd + (["--config", str(scan_config)] if scan_config else []), logfile, "scan")
    _stage(apt + ["segment", str(scan)] + (["--config", str(segment_config_path)] if segment_config_path else []),
           logfile, "segment")
    _stage(apt + ["report", str(scan), "--out", str(work / "report")], logfile, "report")
    swap_directory(work, outbox / run.name)
    return sorted(str(p.relative_to(outbox)) for p in (outbox / run.name).iterdir())


def reprocess(args) -> int:
    inbox, outbox = Path(args.inbox), Path(args.outbox)
    if not inbox.is_dir():
        raise InputError(inbox, "inbox is not a directory")
    if not outbox.parent.is_dir():
        raise InputError(outbox, f"parent directory {outbox.parent} does not exist")
    outbox.mkdir(exist_ok=True)
    if not os.access(outbox, os.W_OK):
        raise InputError(outbox, "outbox is not writable")
    model_dir = Path(args.model) if args.model else DEFAULT_MODEL
    card = load_card(model_dir)
    configs = {"scan": load_config("scan", args.scan_config),
               "segment": SegmentConfig.load(args.segment_config).to_dict()}
    config_hash = hashlib.sha256(json.dumps(configs, sort_keys=True, default=str).encode()).hexdigest()
    launcher = shlex.split(args.launcher) if args.launcher else default_launcher(args.ranks)
    manifest = Manifest(outbox)
    counts = {"done": 0, "current": 0, "failed": 0, "busy": 0, "waiting": 0}
    for run in find_runs(inbox):
        if run.range is None:
            log.warning("reprocess: %s: no range file (%s.rrng or .rng) yet; left for a later pass",
                        run.input, run.input.stem)
            counts["waiting"] += 1
            continue
        with manifest.claim(run.name) as mine:
            if not mine:
                log.info("reprocess: %s: being processed by another reprocess; skipped", run.name)
                counts["busy"] += 1
                continue
            key = {"input_sha256": sha256_file(run.input), "range_sha256": sha256_file(run.range),
                   "config_sha256": config_hash, "model_sha256": card["model_sha256"]}
            if manifest.is_current(run.name, key):
                log.info("reprocess: %s: up to date", run.name)
                counts["current"] += 1
                continue
            log.info("reprocess: %s: scan -> segment -> report", run.name)
            entry = {"key": key, "input": str(run.input), "range": str(run.range), "software_version": __version__}
            try:
                entry["outputs"] = process_run(run, outbox, launcher, model_dir, args.scan_config,
                                               args.segment_config)
                entry["status"] = "done"
                counts["done"] += 1
                log.info("reprocess: %s: done -> %s", run.name, outbox / run.name)
            except (RunFailed, OSError) as exc:
                entry.update(status="failed", error=str(exc))
                counts["failed"] += 1
                log.error("reprocess: %s: failed: %s (log: %s)", run.name, exc,
                          outbox / ".work" / run.name / "log.txt")
            entry["finished_utc"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            manifest.record(run.name, entry)
    log.info("reprocess: %s", ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 1 if counts["failed"] else 0
