"""Labelled map files: the dictionary of `simulate` (schema apt-cnn-hpc/dictionary/1 or /2) and
the extracts of `extract` (apt-cnn-hpc/extract/1), read alike by training and evaluation.

  /maps            uint8 [N, bins, bins]   zx-SDM [dz, dx], scaled by sdm.normalise.to_uint8
  /labels          uint8 [N]               0 = FCC, 1 = L1_2
  /targets         float32 [N]             (dictionary/2) training target: the label, or for mixed
                                           maps with `mixed.target: share` the L1_2 share of the
                                           cube's reference atoms
  /params/<name>   float32 [N]             every generation parameter of each map
  attrs: schema, sdm_settings (JSON), library_config (JSON, dictionaries); /provenance
"""
import contextlib
import json
import os

import h5py
import numpy as np

from ..errors import InputError
from ..fileutil import atomic_output
from ..provenance import write_h5_provenance
from ..sdm import SDMSettings
from .schema import check_schema, schema_name

DICTIONARY, EXTRACT = ("dictionary", 2), ("extract", 1)
READABLE = {"dictionary": (1, 2), "extract": (1,)}


def open_maps(path):
    """Open a map file and check its schema; returns (h5py.File, SDMSettings, n)."""
    if not os.path.isfile(path):
        raise InputError(path, "file not found")
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise InputError(path, "not an HDF5 file") from None
    try:
        kind, version = check_schema(f.attrs.get("schema"), path, tuple(READABLE), (1, 2))
        if version not in READABLE[kind]:
            raise InputError(path, f"{kind} file version {version} is not readable by this apt-cnn-hpc")
        if "maps" not in f or "labels" not in f:
            raise InputError(path, "not an apt-cnn map file (needs /maps and /labels)")
        maps, labels = f["maps"], f["labels"]
        if maps.ndim != 3 or maps.dtype != np.uint8 or labels.shape != (maps.shape[0],):
            raise InputError(path, f"/maps must be uint8 [N, bins, bins] with /labels [N]; "
                                   f"got {maps.shape} {maps.dtype} and {labels.shape}")
        settings = SDMSettings.from_dict(json.loads(f.attrs["sdm_settings"]), path)
        if maps.shape[0] == 0:
            raise InputError(path, "contains no maps")
        if settings.map_bins != maps.shape[1]:
            raise InputError(path, f"maps are {maps.shape[1]} bins wide but sdm_settings say {settings.map_bins}")
    except InputError:
        f.close()
        raise
    except (KeyError, ValueError) as exc:
        f.close()
        raise InputError(path, f"malformed map file ({exc})") from None
    return f, settings, maps.shape[0]


def read_rows(f, idx: np.ndarray, targets: bool = False):
    """Maps and labels (uint8) of rows `idx` (any order), read in increasing order as HDF5 wants;
    with `targets`, the training targets (float32; the labels where a file has none) instead."""
    idx = np.asarray(idx, np.int64)
    order = np.argsort(idx)
    maps = np.empty((len(idx),) + f["maps"].shape[1:], np.uint8)
    column = "targets" if targets and "targets" in f else "labels"
    y = np.empty(len(idx), np.float32 if targets else np.uint8)
    if len(idx):
        maps[order] = f["maps"][idx[order]]
        y[order] = f[column][idx[order]]
    return maps, y


def library_config(f) -> dict:
    return json.loads(f.attrs.get("library_config", "{}"))


@contextlib.contextmanager
def dictionary_writer(out, n: int, settings: SDMSettings, params: tuple, library: dict, record: dict,
                      overwrite: bool = True):
    """Yield write(i, map, label, target, params) filling an N-row dictionary; the file appears
    under `out` only when the block completes."""
    b = settings.map_bins
    with atomic_output(out, overwrite) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("maps", (n, b, b), dtype=np.uint8, chunks=(min(32, n), b, b), compression="lzf")
            f.create_dataset("labels", (n,), dtype=np.uint8)
            f.create_dataset("targets", (n,), dtype=np.float32)
            g = f.create_group("params")
            for k in params:
                g.create_dataset(k, (n,), dtype=np.float32)
            f.attrs["schema"] = schema_name(*DICTIONARY)
            f.attrs["library_config"] = json.dumps(library)
            f.attrs["sdm_settings"] = json.dumps(settings.to_dict())

            def write(i, img, label, target, p):
                f["maps"][i] = img
                f["labels"][i] = label
                f["targets"][i] = target
                for k in params:
                    g[k][i] = p[k]

            yield write
            write_h5_provenance(f, record)


def write_extract(out, maps, params: dict, label: int, settings: SDMSettings, record: dict, overwrite):
    """Maps cut from a reconstruction, all with one label (`params`: name -> [N] values)."""
    with atomic_output(out, overwrite) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("maps", data=maps, compression="lzf")
            f.create_dataset("labels", data=np.full(len(maps), label, np.uint8))
            g = f.create_group("params")
            for name, v in params.items():
                g.create_dataset(name, data=np.asarray(v, np.float32))
            f.attrs["schema"] = schema_name(*EXTRACT)
            f.attrs["sdm_settings"] = json.dumps(settings.to_dict())
            write_h5_provenance(f, record)
