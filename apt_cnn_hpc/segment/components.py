"""Precipitates as connected components: of a voxel mask, or of labelled ions themselves."""
import numpy as np
from scipy import ndimage, sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree


def _numbered_by_size(lab: np.ndarray, n: int, sizes: np.ndarray, min_size: int) -> np.ndarray:
    """Relabel 1..n components to 1..k by decreasing size (ties by first element), dropping those
    below min_size, so the numbering does not depend on how the data were traversed."""
    keep = np.flatnonzero(sizes >= min_size)
    order = keep[np.lexsort((keep, -sizes[keep]))]
    remap = np.zeros(n + 1, np.int32)
    remap[order + 1] = np.arange(1, len(order) + 1, dtype=np.int32)
    return remap[lab]


def label_components(mask: np.ndarray, connectivity: int, min_voxels: int) -> np.ndarray:
    """Component label per voxel (0 = none), numbered 1..n by decreasing size."""
    structure = ndimage.generate_binary_structure(3, connectivity)
    lab, n = ndimage.label(mask, structure=structure)
    if n == 0:
        return lab.astype(np.int32)
    return _numbered_by_size(lab, n, np.bincount(lab.ravel(), minlength=n + 1)[1:], min_voxels)


def ion_components(xyz: np.ndarray, mask: np.ndarray, link_nm: float, min_ions: int) -> np.ndarray:
    """Per ion: 0, or the component of the `mask` ions linked by chains of neighbours closer than
    `link_nm` (numbered by decreasing size; components below `min_ions` become 0)."""
    out = np.zeros(len(xyz), np.int32)
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return out
    pairs = cKDTree(xyz[idx]).query_pairs(link_nm, output_type="ndarray")
    graph = sparse.coo_matrix((np.ones(len(pairs), bool), (pairs[:, 0], pairs[:, 1])), shape=(len(idx),) * 2)
    n, lab = connected_components(graph, directed=False)
    lab = lab + 1
    out[idx] = _numbered_by_size(lab, n, np.bincount(lab, minlength=n + 1)[1:], min_ions)
    return out


def split_by_cores(xyz: np.ndarray, ids: np.ndarray, core: np.ndarray, link_nm: float, min_core_ions: int) -> np.ndarray:
    """Precipitates kept apart where their boundaries touch (a marker watershed on the ions):
    the `core` ions (deep inside, e.g. high smoothed probability) form components linked closer
    than `link_nm`; cores of >= min_core_ions are markers, and every ion of a component `ids` > 0
    goes to the marker nearest to it within its own component. Components holding fewer than two
    markers stay as they are. Renumbered by decreasing size."""
    out = ids.astype(np.int64)
    marks = ion_components(xyz, core & (ids > 0), link_nm, min_core_ions)
    if marks.max(initial=0) == 0:
        return ids
    next_id = ids.max() + 1
    parent = np.zeros(marks.max() + 1, np.int64)
    parent[marks[marks > 0]] = ids[marks > 0]
    for comp in np.unique(parent[1:]):
        mk = np.flatnonzero(parent == comp)
        if len(mk) < 2:
            continue
        members = np.flatnonzero(ids == comp)
        seeds = members[np.isin(marks[members], mk)]
        _, nearest = cKDTree(xyz[seeds]).query(xyz[members])
        sub = marks[seeds][nearest]
        for m in mk[1:]:                    # the first marker keeps the component's number
            out[members[sub == m]] = next_id
            next_id += 1
    sizes = np.bincount(out, minlength=next_id)[1:]
    return _numbered_by_size(out, next_id - 1, sizes, 1)


def element_table(ion_names: list, compositions: list) -> tuple[list, np.ndarray]:
    """Elements of the range file and atoms of each element per ion species [n_species, n_el];
    species with custom names (no elements) count as one atom of their own name."""
    elements: list = []
    for name, comp in zip(ion_names, compositions):
        for el in (comp or {name: 1}):
            if el not in elements:
                elements.append(el)
    atoms = np.zeros((len(ion_names), len(elements)))
    for k, (name, comp) in enumerate(zip(ion_names, compositions)):
        for el, n in (comp or {name: 1}).items():
            atoms[k, elements.index(el)] = n
    return elements, atoms
