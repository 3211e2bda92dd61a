"""How large a tile of cube origins a rank may stream, from its memory budget (docs/performance.md):
the cube maps of a tile hold at most LAYERS_HELD voxel layers of partial maps over the tile's voxel
window (the m layers of the window and the one being added, their running sum, the cube maps of
the layer being inferred, the box sums made a few map rows at a time), counted as int32 bins x
bins each (the m layers are held as uint16 since they fit, so about 14 bytes per bin are measured
against the 32 planned: docs/performance.md); the
rest of the rank is Python, TensorFlow and the models (BASE_MB), the CNN's activations for one
inference batch (MB_PER_BATCH_MAP per map), about BYTES_PER_ION per ion with halo, and the
cube-origin grids."""
import ctypes
import ctypes.util
import logging
import os
import resource

log = logging.getLogger(__name__)
BASE_MB = 950.0           # Python, TensorFlow, the CNN and the per-ion models, loaded and run (0.95 GB measured)
MB_PER_BATCH_MAP = 4.2    # the CNN's activations per map of an inference batch (1.70 GB at 256, 0.92 at 64)
BYTES_PER_ION = 90.0      # what a rank holds per ion with halo during the maps: positions, labels, record
                          # indices, the partner index, the per-ion results (86 B measured, after
                          # release_free_memory)
LAYERS_HELD = 8


def tile_voxels(budget_mb: float, n_ions: int, n_cube_origins: int, n_grids: int, batch: int, bins: int, m: int) -> int:
    """The voxel columns a tile's window may have so that the rank stays within budget_mb (at least
    one cube's m x m; a warning when even that does not fit)."""
    fixed_mb = BASE_MB + batch * MB_PER_BATCH_MAP + (n_ions * BYTES_PER_ION + n_cube_origins * 8.0 * n_grids) / 2 ** 20
    per_voxel_mb = LAYERS_HELD * bins * bins * 4 / 2 ** 20
    voxels = int((budget_mb - fixed_mb) / per_voxel_mb)
    if voxels < m * m:
        log.warning("scan: a memory budget of %.0f MB leaves no room for the cube maps (%.0f MB before them, "
                    "%.1f MB per voxel column of a tile): tiles of one cube; raise --memory-budget or add ranks",
                    budget_mb, fixed_mb, per_voxel_mb)
    return max(voxels, m * m)


def current_rss_mb() -> float:
    """This process's resident memory now (MB), to compare with the budget's estimates."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def peak_rss_mb() -> float:
    """This process's high-water mark of resident memory so far (MB): read after each phase, it
    says which phase set the peak."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def release_free_memory():
    """Hand the heap memory a pass has freed back to the OS (glibc keeps the many mid-sized blocks
    of the per-ion pass's chunks: 180 bytes per ion before the maps, measured), so what the rank
    holds during the maps is what the budget estimates. A no-op without glibc."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
