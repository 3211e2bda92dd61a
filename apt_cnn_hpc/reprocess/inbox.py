"""APT runs waiting in an inbox: a reconstruction with a range file of the same stem."""
from dataclasses import dataclass
from pathlib import Path

from ..io.ions import FORMATS

RECONSTRUCTIONS = tuple(f for f in FORMATS if f != ".csv")   # what instruments and IVAS/AP Suite write
RANGE_FILES = (".rrng", ".rng")


@dataclass(frozen=True)
class Run:
    name: str           # the stem, also the name of the run's folder in the outbox
    input: Path
    range: Path | None  # None: no range file yet (still being copied?)


def find_runs(inbox: Path) -> list[Run]:
    """Every reconstruction directly in `inbox`, sorted by name, with its range file if present
    (same stem, any case of the extension)."""
    files = sorted(p for p in inbox.iterdir() if p.is_file() and not p.name.startswith("."))
    by_stem = {}
    for p in files:
        by_stem.setdefault(p.stem, []).append(p)
    runs = []
    for stem, group in by_stem.items():
        recs = [p for p in group if p.suffix.lower() in RECONSTRUCTIONS]
        rngs = [p for p in group if p.suffix.lower() in RANGE_FILES]
        for rec in recs:
            name = stem if len(recs) == 1 else f"{stem}{rec.suffix.lower().replace('.', '_')}"
            runs.append(Run(name, rec, rngs[0] if rngs else None))
    return runs
