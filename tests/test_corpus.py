"""The bad-input corpus over every CLI entry point: one clear line naming the file and the problem,
exit code 2, no traceback, nothing half-written (no output, no temporary file left behind)."""
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from apt_cnn_hpc.io import write_pos

from conftest import REPO, assert_clean_error, run_cli

HEADER = np.dtype([("cSignature", np.uint8, (4,)), ("iHeaderSize", "<i4"), ("iHeaderVersion", "<i4"),
                   ("wcFilename", "<u2", 256), ("ftCreationTime", "<u8"), ("llIonCount", "<u8")])
SECTION = np.dtype([("cSignature", np.uint8, (4,)), ("iHeaderSize", "<i4"), ("iHeaderVersion", "<i4"),
                    ("wcSectionType", "<u2", 32), ("iSectionVersion", "<i4"), ("eRelationshipType", "<u4"),
                    ("eRecordType", "<u4"), ("eRecordDataType", "<u4"), ("iDataTypeSize", "<i4"),
                    ("iRecordSize", "<i4"), ("wcDataUnit", "<u2", 16), ("llRecordCount", "<u8"),
                    ("llByteCount", "<u8")])


def _wide(text: str, n: int) -> np.ndarray:
    out = np.zeros(n, np.uint16)
    out[:len(text)] = [ord(c) for c in text]
    return out


def write_apt(path, xyz, mq, declared_ions=None):
    """A minimal AP Suite APT6 file (header, Position and Mass sections) as AMETEK lays it out,
    with a header that may lie about the number of ions."""
    h = np.zeros(1, HEADER)
    h["cSignature"] = np.frombuffer(b"APT\0", np.uint8)
    h["iHeaderSize"], h["iHeaderVersion"] = 540, 2
    h["llIonCount"] = len(mq) if declared_ions is None else declared_ions
    parts = [h.tobytes()]
    for name, unit, data, bounds in (("Position", "nm", np.asarray(xyz, "<f4"), True),
                                     ("Mass", "Da", np.asarray(mq, "<f4").reshape(-1, 1), False)):
        s = np.zeros(1, SECTION)
        s["cSignature"] = np.frombuffer(b"SEC\0", np.uint8)
        s["iHeaderSize"], s["iHeaderVersion"] = 148 + 24 * bounds, 2
        s["wcSectionType"], s["wcDataUnit"] = _wide(name, 32), _wide(unit, 16)
        s["iSectionVersion"], s["eRelationshipType"], s["eRecordType"], s["eRecordDataType"] = 1, 1, 1, 3
        s["iDataTypeSize"], s["iRecordSize"] = 32, 4 * data.shape[1]
        s["llRecordCount"], s["llByteCount"] = len(data), data.nbytes
        parts.append(s.tobytes())
        if bounds:
            parts.append(np.concatenate([data.min(0), data.max(0)]).astype("<f4").tobytes())
        parts.append(data.tobytes())
    Path(path).write_bytes(b"".join(parts))


def write_epos(path, xyz, mq):
    rec = np.zeros((len(mq), 11), ">f4")
    rec[:, :3], rec[:, 3] = xyz, mq
    rec.view(">i4")[:, 9:] = 1          # deltaPulse, ions per pulse
    rec.tofile(path)


@pytest.fixture(scope="module")
def data(small_specimen, tmp_path_factory):
    """Good and bad copies of the small specimen in every format."""
    d = tmp_path_factory.mktemp("corpus")
    pos = np.fromfile(f"{small_specimen}.pos", ">f4").reshape(-1, 4)
    xyz, mq = pos[:, :3], pos[:, 3]
    shutil.copyfile(f"{small_specimen}.rrng", d / "good.rrng")
    write_pos(d / "good.pos", xyz, mq)
    write_epos(d / "good.epos", xyz, mq)
    write_apt(d / "good.apt", xyz, mq)
    raw = (d / "good.pos").read_bytes()
    (d / "truncated.pos").write_bytes(raw[:-7])
    (d / "empty.pos").write_bytes(b"")
    nan = pos.copy()
    nan[123, 1] = np.nan
    nan.astype(">f4").tofile(d / "nan.pos")
    (d / "truncated.epos").write_bytes((d / "good.epos").read_bytes()[:-10])
    (d / "pos_named.epos").write_bytes(raw if len(raw) % 44 else raw[:-16])    # a POS file renamed
    write_apt(d / "lying.apt", xyz, mq, declared_ions=len(mq) + 1000)
    (d / "cut.apt").write_bytes((d / "good.apt").read_bytes()[:-100])
    (d / "cubes.csv").write_text("x0,y0,z0\n4,4,4\n")
    rrng = (d / "good.rrng").read_text()
    (d / "malformed.rrng").write_text(rrng.replace("[Ranges]\nNumber=", "[Ranges]\nNumber=x"))
    lines = rrng.splitlines()
    first = next(l for l in lines if l.startswith("Range1="))
    lo, hi = (float(v) for v in first.split("=")[1].split()[:2])
    n = int(next(l for l in lines if l.startswith("Number=") and lines.index(l) > lines.index("[Ranges]"))
            .split("=")[1])
    overlap = rrng.replace(f"[Ranges]\nNumber={n}", f"[Ranges]\nNumber={n + 1}") + \
        f"Range{n + 1}={lo + 0.01:.4f} {hi + 0.5:.4f} Vol:0.01 Al:1 Color:808080\n"
    (d / "overlap.rrng").write_text(overlap)
    return d


def _ion_stage(stage, d, ions, rrng, out):
    if stage == "sdm":
        return run_cli("sdm", ions, "--range", rrng, "--box", 2, 2, 2, 8, 8, 8, "--out", out)
    if stage == "extract":
        return run_cli("extract", ions, "--range", rrng, "--cubes", d / "cubes.csv", "--label", "fcc",
                       "--augment", 1, "--out", out)
    return run_cli("scan", ions, "--range", rrng, "--out", out)


def _nothing_written(d: Path, stem: str):
    left = [p.name for p in d.iterdir() if p.name.startswith((stem, f".{stem}"))]
    assert not left, left


ION_CASES = [("truncated.pos", "not a multiple of the 16-byte record"), ("empty.pos", "empty"),
             ("nan.pos", "NaN/inf"), ("truncated.epos", "44-byte record"), ("pos_named.epos", "44-byte record"),
             ("lying.apt", "APT header declares"), ("cut.apt", "cannot read APT"),
             ("missing.pos", "file not found")]
STAGES = ["sdm", "extract", "scan"]


def test_good_files_in_every_format_give_the_same_map(data, tmp_path):
    """The corpus's good files are good (POS, ePOS and APT of the same ions give the same SDM),
    so each bad one differs from them in one way only."""
    results = []
    for name in ("good.pos", "good.epos", "good.apt"):
        proc = _ion_stage("sdm", data, data / name, data / "good.rrng", tmp_path / name)
        assert proc.returncode == 0, proc.stderr[-2000:]
        results.append(np.load(tmp_path / f"{name}.npz")["zx_counts"])
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("name,needle", ION_CASES)
def test_bad_ion_files(data, stage, name, needle, tmp_path):
    proc = _ion_stage(stage, data, data / name, data / "good.rrng", tmp_path / "out")
    assert_clean_error(proc, name, needle)
    _nothing_written(tmp_path, "out")


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("name,needle", [("malformed.rrng", "cannot read RRNG"),
                                         ("overlap.rrng", "overlapping ranges"),
                                         ("missing.rrng", "file not found")])
def test_bad_range_files(data, stage, name, needle, tmp_path):
    proc = _ion_stage(stage, data, data / "good.pos", data / name, tmp_path / "out")
    assert_clean_error(proc, name, needle)
    _nothing_written(tmp_path, "out")


YAML_CASES = [  # stage, extra args before --config, YAML, what the message names
    ("specimen", [], "size_nm: [-5, 10, 10]\n", "size_nm"),
    ("specimen", [], "precipitate: no_such_structure\n", "unknown structure 'no_such_structure'"),
    ("specimen", [], "overall_composition_at_pct: {Xx: 5}\n", "Xx"),
    ("simulate", ["--counts", 2, 2], "structures: {fcc: fcc_al, l12: nope}\n", "unknown structure 'nope'"),
    ("simulate", ["--counts", 2, 2], "efficiency: [0.5, 1.5]\n", "efficiency"),
    ("scan", [], "sdm: {voxel_nm: 8.0}\n", "stride cannot exceed the cube"),
    ("scan", [], "min_reference: -3\n", "min_reference"),
    ("scan", [], "precision: float16\n", "precision must be one of float32, bfloat16"),
    ("scan", [], "sdm: {pair: [Xx, Al]}\n", "other SDM settings"),   # the model's check comes first
    ("scan", [], "sdm: {cube_nm: -4}\n", "cube_nm"),
    ("sdm", [], "pair: [Al, Xx]\n", "species 'Xx'"),
    ("sdm", [], "map_bins: 0\n", "map_bins"),
    ("extract", [], "neighbour_radius_nm: -1\n", "neighbour_radius_nm"),
]


@pytest.mark.parametrize("stage,extra,text,needle", YAML_CASES)
def test_bad_config_values(data, stage, extra, text, needle, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    out = tmp_path / "out"
    if stage == "specimen":
        proc = run_cli("specimen", "--config", cfg, "--out", out)
    elif stage == "simulate":
        proc = run_cli("simulate", *extra, "--config", cfg, "--out", tmp_path / "out.h5")
    elif stage == "sdm":
        proc = run_cli("sdm", data / "good.pos", "--range", data / "good.rrng", "--box", 2, 2, 2, 8, 8, 8,
                       "--config", cfg, "--out", out)
    elif stage == "extract":
        proc = run_cli("extract", data / "good.pos", "--range", data / "good.rrng", "--cubes", data / "cubes.csv",
                       "--label", "fcc", "--config", cfg, "--out", out)
    else:
        proc = run_cli("scan", data / "good.pos", "--range", data / "good.rrng", "--config", cfg, "--out", out)
    assert_clean_error(proc, needle)
    _nothing_written(tmp_path, "out")


@pytest.mark.parametrize("stage", ["scan", "explain", "evaluate"])
def test_wrong_model(data, stage, tmp_path):
    fake = tmp_path / "model"
    fake.mkdir()
    (fake / "model_card.json").write_text("{not json")
    (fake / "model.keras").write_bytes(b"PK\x03\x04 not a keras archive")
    if stage == "scan":
        proc = run_cli("scan", data / "good.pos", "--range", data / "good.rrng", "--model", fake,
                       "--out", tmp_path / "out.h5")
    elif stage == "explain":
        proc = run_cli("explain", "--model", fake, "--maps", tmp_path / "none.h5", "--out", tmp_path / "out")
    else:
        proc = run_cli("evaluate", "--model", fake)
    assert_clean_error(proc, "model_card.json", "not valid JSON")
    _nothing_written(tmp_path, "out")
    proc = run_cli("scan", data / "good.pos", "--range", data / "good.rrng", "--model", tmp_path / "nowhere",
                   "--out", tmp_path / "out.h5")
    assert_clean_error(proc, "nowhere", "not a model directory")


def test_existing_outputs_are_refused_and_kept(data, tmp_path):
    """Every stage that writes a named output refuses to replace it without --overwrite."""
    keep = {}

    def precious(path):
        path = Path(path)
        if path.suffix:
            path.write_text("precious")
        else:
            path.mkdir()
            (path / "mine.txt").write_text("precious")
        keep[path] = True
        return path

    runs = [
        ("specimen", ["specimen", "--size", 8, 8, 8, "--out", tmp_path / "spec"], tmp_path / "spec.pos"),
        ("simulate", ["simulate", "--counts", 2, 2, "--out", precious(tmp_path / "dict.h5")], tmp_path / "dict.h5"),
        ("sdm", ["sdm", data / "good.pos", "--range", data / "good.rrng", "--box", 2, 2, 2, 8, 8, 8,
                 "--out", tmp_path / "map"], tmp_path / "map.npz"),
        ("extract", ["extract", data / "good.pos", "--range", data / "good.rrng", "--cubes", data / "cubes.csv",
                     "--label", "fcc", "--out", precious(tmp_path / "x.h5")], tmp_path / "x.h5"),
        ("scan", ["scan", data / "good.pos", "--range", data / "good.rrng", "--out", precious(tmp_path / "s.h5")],
         tmp_path / "s.h5"),
    ]
    precious(tmp_path / "spec.pos")
    precious(tmp_path / "map.npz")
    for stage, args, target in runs:
        proc = run_cli(*args)
        assert_clean_error(proc, target.name, "--overwrite")
        assert target.read_text() == "precious", stage
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_no_traceback_on_garbage_hdf5_inputs(data, tmp_path):
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)   # an HDF5 signature and nothing else
    for args in (["segment", garbage], ["score", garbage, "--truth", garbage], ["report", garbage, "--out",
                 tmp_path / "r"], ["train", "--dictionary", garbage, "--out", tmp_path / "m"],
                 ["explain", "--model", REPO / "models" / "default", "--maps", garbage, "--out", tmp_path / "e"]):
        assert_clean_error(run_cli(*args), "garbage.h5")
    with h5py.File(tmp_path / "scan_like.h5", "w") as f:
        f["voxels/probability_sum"] = np.zeros((2, 2, 2), np.float32)      # no attributes, no provenance
    assert_clean_error(run_cli("segment", tmp_path / "scan_like.h5"), "scan_like.h5")
