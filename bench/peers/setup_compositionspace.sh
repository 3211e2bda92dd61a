#!/usr/bin/env bash
# Set up the peer tool CompositionSpace (PyPI compositionspace 0.1.4) in its OWN venv.
#
#   bash bench/peers/setup_compositionspace.sh [VENV_DIR]
#
# VENV_DIR defaults to out/peers/compositionspace-venv under the repository root.
# Idempotent: a venv that already satisfies every pin below is left alone.
# compositionspace 0.1.4 reads POS/APT/RRNG through ifes-apt-tc-data-modeling's
# 0.2.x reader API (ReadPosFileFormat / ReadRrngFileFormat, removed in 0.5.0), so
# it cannot share the project's venv. On failure: one line on stderr, exit 1.
# Run the adapter with that venv's python:
#   VENV_DIR/bin/python bench/peers/compositionspace_run.py --pos S.pos --range S.rrng --out labels.npz
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${1:-$ROOT/out/peers/compositionspace-venv}"
case "$VENV" in /*) ;; *) VENV="$ROOT/$VENV" ;; esac
PY311="${PYTHON311:-$(command -v python3.11 || true)}"

die() { echo "setup_compositionspace: $*" >&2; exit 1; }

# The two pins the tool needs; everything else is the `pip freeze` of a working venv
# (python 3.11.7, 2026-11), kept so the install is reproducible. With these versions
# (numpy 2.4, pandas 3.1, scikit-learn 1.9) compositionspace 0.1.4 imports and runs
# its whole preparation -> autophase -> segmentation -> clustering pipeline unchanged.
REQUIRED="compositionspace==0.1.4 ifes-apt-tc-data-modeling==0.2.2"
PINS="$(cat <<'PINS_EOF'
annotated-types==0.8.0
anyio==4.16.0
argon2-cffi==25.1.0
argon2-cffi-bindings==26.2.0
arrow==1.4.0
ase==3.29.0
asttokens==3.0.2
async-lru==2.4.0
attrs==26.1.0
babel==2.19.0
beautifulsoup4==4.15.0
bleach==6.4.0
blosc2==4.14.1
certifi==2026.10.19.post1
cffi==2.1.1
charset-normalizer==3.5.3
cloudpickle==3.1.3
comm==0.2.3
contourpy==1.3.3
cycler==0.12.1
debugpy==1.8.22
defusedxml==0.7.1
executing==2.3.0
fastjsonschema==2.22.3
flatdict==4.1.0
fonttools==4.68.0
fqdn==1.6.0
h11==0.16.0
h2==4.4.1
h5grove==4.0.0
h5py==3.16.0
hpack==4.2.0
httpcore==1.0.9
httpx==0.28.1
hyperframe==6.1.0
idna==3.20
ipykernel==7.4.0
ipython==9.18.1
ipython_pygments_lexers==1.1.1
ipywidgets==8.1.9
isoduration==20.11.0
jedi==0.20.1
Jinja2==3.1.6
joblib==1.6.0
json5==0.17.3
jsonpointer==3.12
jsonschema==4.26.0
jsonschema-specifications==2025.9.1
jupyter==1.1.1
jupyter-console==6.6.3
jupyter-events==0.12.1
jupyter-lsp==2.3.1
jupyter_builder==1.3.0
jupyter_client==8.10.0
jupyter_core==5.9.1
jupyter_server==2.21.1
jupyter_server_terminals==0.5.4
jupyterlab==4.6.6
jupyterlab_h5web==12.9.0
jupyterlab_pygments==0.3.0
jupyterlab_server==2.28.1
jupyterlab_widgets==3.0.17
kiwisolver==1.5.1
lark==1.3.1
lxml==6.1.3
markdown-it-py==4.3.0
MarkupSafe==3.0.4
matplotlib==3.11.2
matplotlib-inline==0.2.2
mdurl==0.1.2
mistune==3.4.0
mpmath==1.3.0
msgpack==1.2.4
narwhals==2.29.0
nbclient==0.11.0
nbconvert==7.17.2
nbformat==5.11.1
ndindex==1.10.1
nest-asyncio2==1.7.4
networkx==3.6.1
notebook==7.6.5
notebook_shim==0.2.4
numexpr==2.14.2
numpy==2.4.6
orjson==3.13.0
overrides==7.7.0
packaging==26.4
pandas==3.1.1
pandocfilters==1.5.1
parso==0.8.7
pexpect==4.9.0
pillow==13.0.0
platformdirs==4.14.8
prometheus_client==0.26.0
prompt_toolkit==3.0.53
psutil==7.2.2
ptyprocess==0.7.0
pure_eval==0.2.4
py-cpuinfo==9.0.0
pycparser==3.12
pydantic==2.14.4
pydantic_core==2.50.5
Pygments==2.21.0
pyparsing==3.3.3
python-dateutil==4.0.0
python-json-logger==4.2.0
PyYAML==6.0.4
pyzmq==27.3.0
radioactivedecay==0.6.1
referencing==0.37.0
requests==2.34.2
rfc3339-validator==0.1.4
rfc3986-validator==0.1.1
rfc3987-syntax==1.1.0
rich==15.0.0
rpds-py==2026.9.1
scikit-learn==1.9.1
scipy==1.17.1
Send2Trash==2.2.0
six==1.17.0
soupsieve==4.1.3
stack-data==0.6.3
sympy==1.14.0
tables==3.11.1
terminado==0.18.1
threadpoolctl==3.8.0
tifffile==2026.3.3
tinycss2==1.5.1
tornado==6.6.1
traitlets==5.16.1
trimesh==5.2.0
typing-inspection==0.4.5
typing_extensions==4.16.0
tzdata==2026.6
uri-template==1.3.0
urllib3==2.8.0
wcwidth==0.9.4
webcolors==25.10.0
webencodings==0.6.1
websocket-client==1.9.2
widgetsnbextension==4.0.16
xmltodict==1.0.4
PINS_EOF
)"

check() {  # exit 0 iff the venv's python is 3.11 and every pin is installed at its version
  [ -x "$VENV/bin/python" ] || return 1
  printf '%s\n%s\n' "$REQUIRED" "$PINS" | tr ' ' '\n' | sed '/^$/d' | "$VENV/bin/python" -c '
import sys, re
from importlib.metadata import version, PackageNotFoundError
if sys.version_info[:2] != (3, 11):
    sys.exit(1)
norm = lambda s: re.sub(r"[-_.]+", "-", s).lower()
bad = []
for line in sys.stdin:
    name, want = line.strip().split("==")
    try:
        have = version(name)
    except PackageNotFoundError:
        try:
            have = version(norm(name))
        except PackageNotFoundError:
            have = None
    if have != want:
        bad.append(f"{name} {have} != {want}")
if bad:
    print("; ".join(bad[:5]), file=sys.stderr)
    sys.exit(1)
' 2>/dev/null || return 1
  "$VENV/bin/python" -c 'import compositionspace.preparation, compositionspace.autophase, compositionspace.segmentation, compositionspace.clustering' >/dev/null 2>&1
}

if check; then
  echo "compositionspace venv ready: $VENV"
  exit 0
fi

[ -n "$PY311" ] && [ -x "$PY311" ] || die "python3.11 not found (set PYTHON311=/path/to/python3.11)"
"$PY311" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null || die "$PY311 is not python 3.11"

if [ -e "$VENV" ] && [ ! -f "$VENV/pyvenv.cfg" ]; then
  die "$VENV exists and is not a venv; refusing to touch it"
fi
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null; then
  rm -rf "$VENV"   # a venv (pyvenv.cfg checked above) of another python: rebuild it
fi
if [ ! -x "$VENV/bin/python" ]; then
  mkdir -p "$(dirname "$VENV")"
  "$PY311" -m venv "$VENV" || die "could not create venv at $VENV"
fi

CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
printf '%s\n' "$PINS" > "$CONSTRAINTS"
LOG="$VENV/setup-pip.log"
if ! "$VENV/bin/python" -m pip install --disable-pip-version-check -c "$CONSTRAINTS" $REQUIRED >"$LOG" 2>&1; then
  die "pip install failed: $(grep -E 'ERROR|error:' "$LOG" | tail -1) (full log: $LOG)"
fi
check || die "installed, but pins or imports do not check out (see $LOG)"
echo "compositionspace venv ready: $VENV"
