"""The scan file (SCAN.h5) and its XDMF sidecar for ParaView.

  /voxels/probability_sum  float32 [nx, ny, nz]  sum of the L1_2 probabilities of the evaluated
                           cubes covering each voxel (0..64); attrs origin_nm (3), voxel_nm
  /voxels/window_count     uint8   [nx, ny, nz]  evaluated cubes covering each voxel (0..64)
  /voxels/ion_count        uint32  [nx, ny, nz]  ions (all species) in each voxel
  /cubes/origin_nm         float32 [n, 3]        lower corner of every evaluated cube
  /cubes/probability       float32 [n]           its L1_2 probability
  /cubes/n_reference       uint32  [n]           its reference ions
  /provenance              attrs json: config, input/range SHA-256, model card, versions, ranks
Voxel (i, j, k) covers origin_nm + [i, i+1) x [j, j+1) x [k, k+1) * voxel_nm.
"""
from pathlib import Path

import numpy as np

from ..fileutil import atomic_h5, atomic_output
from ..provenance import write_h5_provenance

XDMF = """<?xml version="1.0" ?>
<!-- ParaView reads the fastest-varying axis as X: here that is the reconstruction's z (depth),
     so ParaView's X, Y, Z are the data's z, y, x. Coordinates are in nm. -->
<Xdmf Version="3.0">
 <Domain>
  <Grid Name="voxels" GridType="Uniform">
   <Topology TopologyType="3DCoRectMesh" Dimensions="{n0} {n1} {n2}"/>
   <Geometry GeometryType="ORIGIN_DXDYDZ">
    <DataItem Dimensions="3" NumberType="Float" Format="XML">{o0} {o1} {o2}</DataItem>
    <DataItem Dimensions="3" NumberType="Float" Format="XML">{v} {v} {v}</DataItem>
   </Geometry>
{attributes}
  </Grid>
 </Domain>
</Xdmf>
"""
ATTR = """   <Attribute Name="{name}" AttributeType="Scalar" Center="Cell">
    <DataItem Dimensions="{d0} {d1} {d2}" NumberType="{nt}" Precision="{p}" Format="HDF">{file}:/voxels/{name}</DataItem>
   </Attribute>"""


def write_xdmf(path, h5_name: str, grid, datasets: dict):
    nx, ny, nz = grid.shape
    attrs = "\n".join(ATTR.format(name=k, d0=nx, d1=ny, d2=nz, file=h5_name,
                                  nt="Float" if v.dtype.kind == "f" else "UInt", p=v.dtype.itemsize)
                      for k, v in datasets.items())
    text = XDMF.format(n0=nx + 1, n1=ny + 1, n2=nz + 1, o0=grid.origin_nm[0], o1=grid.origin_nm[1],
                       o2=grid.origin_nm[2], v=grid.voxel_nm, attributes=attrs)
    with atomic_output(path) as tmp:
        Path(tmp).write_text(text)


def write_scan(out, grid, voxels: dict, cubes: dict, record: dict, extra_attrs: dict, overwrite=True):
    """Rank 0 writes everything (serial h5py)."""
    with atomic_h5(out, overwrite) as f:
        g = f.create_group("voxels")
        for k, v in voxels.items():
            g.create_dataset(k, data=v, compression="gzip", compression_opts=1)
        g["probability_sum"].attrs["origin_nm"] = np.asarray(grid.origin_nm, np.float64)
        g["probability_sum"].attrs["voxel_nm"] = grid.voxel_nm
        g.attrs["origin_nm"] = np.asarray(grid.origin_nm, np.float64)
        g.attrs["voxel_nm"] = grid.voxel_nm
        g.attrs["index_order"] = "x, y, z"
        c = f.create_group("cubes")
        for k, v in cubes.items():
            c.create_dataset(k, data=v)
        for k, v in extra_attrs.items():
            f.attrs[k] = v
        f.attrs["schema"] = "apt-cnn-hpc/scan/1"
        write_h5_provenance(f, record)
    write_xdmf(Path(str(out)).with_suffix(".xdmf"), Path(str(out)).name, grid, voxels)
