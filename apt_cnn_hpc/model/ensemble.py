"""Deep ensembles (Lakshminarayanan et al., 2017): K models trained alike from different seeds.

The paper's CNN has no dropout, so MC dropout would sample a network it never trained; K
independently trained members instead show where training itself is undecided. A directory made
by `apt-cnn train --members K --out DIR` holds DIR/member_k/ (each a normal model directory) and
DIR/ensemble.json; `apt-cnn scan --model DIR --ensemble K` uses its first K members.
"""
import hashlib
import json
from pathlib import Path

from ..errors import InputError

ENSEMBLE = "ensemble.json"


def member_dirs(model_dir, k: int) -> list[Path]:
    """The model directories to scan with: the first k members of an ensemble directory, or the
    model itself when k == 1 and the directory is a plain model."""
    d = Path(model_dir)
    if k < 1:
        raise InputError(None, f"--ensemble must be >= 1, got {k}")
    spec = d / ENSEMBLE
    if not spec.is_file():
        if k == 1:
            return [d]
        raise InputError(d, f"not an ensemble directory (no {ENSEMBLE}); make one with "
                            "`apt-cnn train --members K --out DIR`")
    try:
        members = json.loads(spec.read_text())["members"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise InputError(spec, "not a valid ensemble file (needs a 'members' list)") from None
    if k > len(members):
        raise InputError(spec, f"holds {len(members)} members, --ensemble asks for {k}")
    return [d / m for m in members[:k]]


def write_ensemble(out: Path, members: list[str], seeds: list[int]):
    from ..fileutil import atomic_output
    with atomic_output(out / ENSEMBLE) as tmp:
        Path(tmp).write_text(json.dumps({"members": members, "seeds": seeds}, indent=1))


def combined_sha256(hashes: list[str]) -> str:
    """One hash for a set of members (the hash itself for one model)."""
    if len(hashes) == 1:
        return hashes[0]
    return hashlib.sha256("".join(hashes).encode()).hexdigest()
