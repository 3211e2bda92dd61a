"""Recognition methods on a scan (segment/methods/), their per-ion results and precipitate
tables, phase SDMs, and scoring against ground truth."""
from .score import oracle_labels, prf
from .voxels import ion_labels

__all__ = ["ion_labels", "oracle_labels", "prf"]
