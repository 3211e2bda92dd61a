#!/usr/bin/env bash
# The main job on the embedded default: a synthetic Al-6.79Li-5.18Mg specimen (paper's alloy),
# its SDMs inside a precipitate and in the matrix, a small synthetic dictionary on 2 ranks, the
# distributed scan with the shipped default model -> 1 nm voxel map of L1_2 probability, then
# segmentation by every recognition method (the default, the paper's rule, isocomposition, the
# order-parameter floor), scoring against the known truth and the
# report (index.html).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/demo}
RANKS=${RANKS:-2}
mkdir -p "$OUT"
BIN=.venv/bin
# the venv's own Open MPI (pip), else the site MPI that install.sh built mpi4py against
MPIEXEC=$(PATH="$BIN:$PATH" command -v mpiexec) || { echo "demo: no mpiexec in $BIN or on PATH" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
export OMPI_MCA_rmaps_base_oversubscribe=1 PRTE_MCA_rmaps_default_mapping_policy=:oversubscribe

"$BIN/apt-cnn" specimen --out "$OUT/specimen" --overwrite
# a 4 nm box centred on the largest precipitate, and one in the matrix corner
read -r PBOX MBOX < <("$BIN/python" - "$OUT/specimen_truth.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1]) as f:
    c, r = f["precipitates/centre_nm"][:], f["precipitates/radius_nm"][:]
k = int(np.argmax(r)); h = min(r[k] / np.sqrt(3), 2.0)
for z in np.arange(2, 38, 1.0):
    m = np.array([-13, -13, z])
    if np.all(np.linalg.norm(c - (m + 2), axis=1) > r + 4.5):
        break
print(",".join(f"{v:.2f}" for v in [*(c[k] - h), *(c[k] + h)]),
      ",".join(f"{v:.2f}" for v in [*m, *(m + 4)]))
PY
)
"$BIN/apt-cnn" sdm "$OUT/specimen.pos" --range "$OUT/specimen.rrng" --box ${PBOX//,/ } \
  --out "$OUT/sdm_precipitate" --overwrite
"$BIN/apt-cnn" sdm "$OUT/specimen.pos" --range "$OUT/specimen.rrng" --box ${MBOX//,/ } \
  --out "$OUT/sdm_matrix" --overwrite
"$MPIEXEC" -n "$RANKS" "$BIN/apt-cnn" simulate --counts 100 100 --out "$OUT/dictionary.h5" --overwrite
"$MPIEXEC" -n "$RANKS" "$BIN/apt-cnn" scan "$OUT/specimen.pos" --range "$OUT/specimen.rrng" \
  --out "$OUT/scan.h5" --overwrite
"$BIN/apt-cnn" segment "$OUT/scan.h5" --overwrite > /dev/null
"$BIN/apt-cnn" score "$OUT/scan.h5" --truth "$OUT/specimen_truth.h5" --out "$OUT/score.json" --overwrite > /dev/null
"$BIN/apt-cnn" report "$OUT/scan.h5" --out "$OUT/report" --score "$OUT/score.json" --overwrite > /dev/null
echo "demo: outputs in $OUT: specimen.pos/.rrng/_truth.h5, sdm_*.png/.npz, dictionary.h5,"
echo "      scan.h5 (voxel map and /precipitates), scan.xdmf (ParaView), score.json"
echo "demo: report: $(cd "$OUT" && pwd)/report/index.html"
