"""The analyses of a precipitate study (apt_cnn_hpc/analysis, contracts/analyses.py) on constructed
data whose answers are known: balls of known radius and composition in a matrix of known
composition, ions at random positions of a fixed density, labels exact."""
import shutil
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from apt_cnn_hpc.analysis.compositions import at_pct
from apt_cnn_hpc.analysis.number_density import number_density, volume_fraction
from apt_cnn_hpc.analysis.proxigram import EDGES_NM
from apt_cnn_hpc.analysis.run import analyse
from apt_cnn_hpc.analysis.size_distribution import size_distribution
from apt_cnn_hpc.contracts.analyses import (read_analyses, write_all_analyses, write_analyses)
from apt_cnn_hpc.contracts.segmentation import MethodRecord, Segmentation, read_segmentation
from apt_cnn_hpc.errors import InputError

from conftest import REPO, run_cli

NAMES = ["Al", "Li", "Mg", "AlLi"]                    # a molecular ion: one Al and one Li atom
COMPOSITIONS = [{"Al": 1}, {"Li": 1}, {"Mg": 1}, {"Al": 1, "Li": 1}]
MATRIX = [0.92, 0.05, 0.03, 0.0]                     # species shares of the ranged ions
BALL = [0.70, 0.25, 0.05, 0.0]
UNRANGED = 0.05                                      # share of ions with no range (species -1)


def atoms_pct(shares):
    """Expected at.% (Al, Li, Mg) of ions drawn with these species shares."""
    atoms = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], float)
    a = np.asarray(shares) @ atoms
    return 100 * a / a.sum()


def specimen(box, balls, rho, seed, matrix=MATRIX, ball=BALL):
    """Ions at random positions (rho per nm^3) in [0, box]^3, labelled exactly: id k inside ball k
    (centre, radius), 0 outside; species drawn from the ball's or the matrix's shares."""
    rng = np.random.default_rng(seed)
    n = rng.poisson(rho * box ** 3)
    xyz = rng.uniform(0, box, (n, 3))
    ids = np.zeros(n, np.int32)
    for k, (c, r) in enumerate(balls, 1):
        ids[np.linalg.norm(xyz - c, axis=1) < r] = k
    species = np.where(ids > 0, rng.choice(4, n, p=ball), rng.choice(4, n, p=matrix)).astype(np.int16)
    species[rng.random(n) < UNRANGED] = -1
    return xyz, species, ids


def table_of(balls, ids, touches_edge=None):
    r = np.array([b[1] for b in balls], float)
    t = {"radius_nm": r, "volume_nm3": 4 / 3 * np.pi * r ** 3,
         "centroid_nm": np.array([b[0] for b in balls], float).reshape(-1, 3),
         "ion_count": np.bincount(ids[ids > 0], minlength=len(balls) + 1)[1:]}
    if touches_edge is not None:
        t["touches_edge"] = np.asarray(touches_edge, bool)
    return t


def segmentation_of(ids, table, name="exact"):
    rec = MethodRecord("exact labels", {}, ids, table, elements=["Al", "Li", "Mg"])
    return Segmentation(name, {name: rec}, {}, {}, {"created_utc": "test"})


def data_of(xyz, species):
    return SimpleNamespace(xyz=xyz, species=species, ranges=SimpleNamespace(ion_names=NAMES, composition=COMPOSITIONS))


@pytest.fixture(scope="module")
def one_ball():
    """A ball of radius 2 nm in the middle of a 10 nm box, 40 ions per nm^3; the ions of one
    corner undetermined (id -1)."""
    balls = [((5.0, 5.0, 5.0), 2.0)]
    xyz, species, ids = specimen(10.0, balls, 40.0, seed=1)
    corner = (xyz < 1.5).all(axis=1)
    ids[corner] = -1
    res = analyse(data_of(xyz, species), segmentation_of(ids, table_of(balls, ids, [False])))["exact"]
    return SimpleNamespace(xyz=xyz, species=species, ids=ids, res=res, corner=corner)


def test_counting_error_is_binomial():
    pct, err, n = at_pct(np.array([[30, 60, 10], [0, 0, 0]]))
    assert n[0] == 100
    np.testing.assert_allclose(pct[0], [30, 60, 10])
    np.testing.assert_allclose(err[0], 100 * np.sqrt(np.array([.3, .6, .1]) * [.7, .4, .9] / 100))
    assert np.isnan(pct[1]).all() and np.isnan(err[1]).all()


def test_proxigram_is_a_step_at_the_interface(one_ball):
    r = one_ball.res
    d, pct, err, n = (r["proxigram_distance_nm"], r["proxigram_at_pct"], r["proxigram_at_pct_error"],
                      r["proxigram_ion_count"])
    assert r["elements"] == ["Al", "Li", "Mg"]
    assert len(d) == 30 and np.allclose(np.diff(r["proxigram_edges_nm"]), 0.2)
    assert r["proxigram_edges_nm"][0] == -3 and r["proxigram_edges_nm"][-1] == 3
    assert pct.shape == err.shape == (30, 3)
    full = n >= 100
    assert full[d < 0].sum() >= 14 and full[d > 0].sum() >= 4     # a ball of 2 nm: up to +2 nm
    assert n[d > 2.2].sum() == 0                                    # nothing deeper than the radius
    for side, truth in ((d < 0, atoms_pct(MATRIX)), (d > 0, atoms_pct(BALL))):
        z = (pct[side & full] - truth) / err[side & full]
        assert np.abs(z).max() < 4.5, (side, z)
        assert 0.4 < np.sqrt(np.mean(z ** 2)) < 1.7          # the stated error is the real scatter
    li = pct[full, 1]
    assert (li[d[full] < 0] < 7).all() and (li[d[full] > 0] > 17).all()   # a step at 0
    # the counting error of each bin is sqrt(p (1 - p) / n) of its atoms (AlLi counts 2 atoms)
    p = pct / 100
    atoms_n = p[:, 1] * (1 - p[:, 1]) / (err[:, 1] / 100) ** 2
    assert (atoms_n[full] >= n[full] - 1e-6).all()


def test_phase_compositions_and_undetermined_ions(one_ball):
    r, ids, species = one_ball.res, one_ball.ids, one_ball.species
    for phase, truth, mask in (("matrix", atoms_pct(MATRIX), ids == 0), ("precipitate", atoms_pct(BALL), ids > 0)):
        pct, err = r[f"{phase}_at_pct"], r[f"{phase}_at_pct_error"]
        assert (np.abs(pct - truth) < 4 * err).all(), (phase, pct, truth, err)
        sp = species[mask & (species >= 0)]
        n_atoms = len(sp) + np.count_nonzero(sp == 3)
        assert r[f"{phase}_atom_count"] == n_atoms          # ranged ions of id 0 (k >= 1) only
        np.testing.assert_allclose(err, 100 * np.sqrt(pct / 100 * (1 - pct / 100) / n_atoms))
    assert r["determined_ion_share"] == pytest.approx(1 - one_ball.corner.mean())
    ranged = species >= 0                                 # undetermined ions in neither count
    assert r["volume_fraction"] == pytest.approx(np.sum(ranged & (ids > 0)) / np.sum(ranged & (ids >= 0)))
    assert r["analysed_volume_nm3"] == pytest.approx(r["convex_hull_volume_nm3"] * r["determined_ion_share"])
    assert 990 < r["convex_hull_volume_nm3"] <= 1000


@pytest.fixture(scope="module")
def many_balls():
    """Ten balls of radii 1.2 - 3 nm, none touching another or the faces, in a 24 nm box."""
    rng = np.random.default_rng(7)
    radii = np.linspace(1.2, 3.0, 10)
    balls = []
    while len(balls) < len(radii):
        r = radii[len(balls)]
        c = rng.uniform(r + 0.5, 24 - r - 0.5, 3)
        if all(np.linalg.norm(c - np.array(c2)) > r + r2 + 0.5 for c2, r2 in balls):
            balls.append((tuple(c), r))
    xyz, species, ids = specimen(24.0, balls, 12.0, seed=3)
    res = analyse(data_of(xyz, species), segmentation_of(ids, table_of(balls, ids, [False] * 10)))["exact"]
    return SimpleNamespace(balls=balls, radii=radii, xyz=xyz, ids=ids, res=res, volume=24.0 ** 3)


def test_number_density_of_known_balls(many_balls):
    r = many_balls.res
    assert abs(r["analysed_volume_nm3"] / many_balls.volume - 1) < 0.005      # the hull of the box
    assert r["number_density_per_nm3"] == pytest.approx(10 / many_balls.volume, rel=0.005)
    assert r["number_density_per_nm3_error"] == pytest.approx(np.sqrt(10) / many_balls.volume, rel=0.005)
    assert r["number_density_per_m3"] == pytest.approx(r["number_density_per_nm3"] * 1e27)
    assert r["number_density_per_m3_error"] == pytest.approx(r["number_density_per_nm3_error"] * 1e27)
    # precipitates cut by the edge count one half, their Poisson variance one quarter
    nd = number_density(10, 4, 1000.0)
    assert nd["number_density_per_nm3"] == pytest.approx(0.012)
    assert nd["number_density_per_nm3_error"] == pytest.approx(np.sqrt(11) / 1000)


def test_volume_fraction_within_its_bootstrap_interval(many_balls):
    r = many_balls.res
    truth = sum(4 / 3 * np.pi * rad ** 3 for _, rad in many_balls.balls) / many_balls.volume
    lo, hi = r["volume_fraction_ci95"]
    assert lo < truth < hi, (lo, truth, hi)
    assert abs(r["volume_fraction"] - truth) < 3 * r["volume_fraction_error"]
    # the bootstrap spread is that of a sum over ten precipitates of different sizes
    assert 0.15 < r["volume_fraction_error"] / r["volume_fraction"] < 0.5
    assert r["bootstrap_resamples"] == 200
    a, b = (volume_fraction(np.array([100, 200, 300]), 6000, 200, seed=0) for _ in range(2))
    np.testing.assert_array_equal(a["volume_fraction_ci95"], b["volume_fraction_ci95"])   # seeded
    assert a["volume_fraction"] == pytest.approx(0.1)
    none = volume_fraction(np.zeros(0), 6000)
    assert none["volume_fraction"] == 0 and none["volume_fraction_error"] == 0


def test_size_distribution_of_known_radii(many_balls):
    r = many_balls.res
    assert r["count"] == 10 and r["count_at_edge"] == 0
    assert r["radius_mean_nm"] == pytest.approx(many_balls.radii.mean())
    assert r["radius_sd_nm"] == pytest.approx(many_balls.radii.std(ddof=1))
    edges = r["size_edges_nm"]
    np.testing.assert_allclose(np.diff(edges), 0.25)
    np.testing.assert_array_equal(r["size_histogram"], np.histogram(many_balls.radii, edges)[0])
    # without the table's flag, a ball whose sphere reaches past the data's bounding box is apart
    xyz = np.array([[0, 0, 0], [20, 20, 20]], float)
    t = {"radius_nm": np.array([1.0, 2.0, 3.0]), "centroid_nm": np.array([[10, 10, 10], [1.5, 10, 10], [10, 10, 18]])}
    s = size_distribution(t, xyz)
    assert (s["count"], s["count_at_edge"]) == (1, 2)
    assert s["radius_mean_nm"] == 1.0 and np.isnan(s["radius_sd_nm"]) and s["radius_mean_all_nm"] == 2.0
    assert s["size_histogram"].sum() == 1 and s["size_histogram_at_edge"].sum() == 2


def test_contract_round_trip_and_version_check(one_ball, tmp_path):
    path = tmp_path / "scan.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("voxels/ion_count", data=np.arange(8))
        f.attrs["schema"] = "apt-cnn-hpc/scan/1"
    prov = {"created_utc": "2024-01-01T00:00:00+00:00", "inputs": {}}
    write_all_analyses(path, {"exact": one_ball.res, "other": one_ball.res}, prov)
    got = read_analyses(path)
    assert list(got.methods) == ["exact", "other"]
    assert got.matches(SimpleNamespace(provenance=prov))
    assert not got.matches(SimpleNamespace(provenance={**prov, "created_utc": "later"}))
    for key, value in one_ball.res.items():
        back = got.methods["exact"][key]
        if isinstance(value, (str, list)):
            assert back == value, key
        else:
            np.testing.assert_array_equal(np.asarray(back), np.asarray(value), err_msg=key)
    with h5py.File(path, "r") as f:                       # the rest of the file is kept
        assert f.attrs["schema"] == "apt-cnn-hpc/scan/1" and f["voxels/ion_count"][-1] == 7
    # one method replaced, the other kept; a new segmentation drops the analyses of the old one
    changed = {**one_ball.res, "count": 99}
    write_analyses(path, "exact", changed, prov)
    got = read_analyses(path)
    assert got.methods["exact"]["count"] == 99 and "other" in got.methods
    write_analyses(path, "exact", changed, {**prov, "created_utc": "later"})
    assert list(read_analyses(path).methods) == ["exact"]
    with h5py.File(path, "r+") as f:
        f["analyses"].attrs["schema"] = "apt-cnn-hpc/analyses/2"
    with pytest.raises(InputError, match="version 2 is not readable"):
        read_analyses(path)
    with h5py.File(path, "r+") as f:
        f["analyses"].attrs["schema"] = "apt-cnn-hpc/analyses/1"
        del f["analyses/exact/proxigram_at_pct"]
    with pytest.raises(InputError, match="incomplete or damaged"):
        read_analyses(path)
    h5py.File(tmp_path / "empty.h5", "w").close()
    with pytest.raises(InputError, match="has no analyses"):
        read_analyses(tmp_path / "empty.h5")
    with pytest.raises(ValueError, match="lack"):
        write_all_analyses(path, {"bad": {"count": 1}}, prov)


@pytest.fixture(scope="module")
def scan_one_rank(small_specimen, tmp_path_factory):
    """The small specimen scanned once with the default model (one rank)."""
    d = tmp_path_factory.mktemp("analysis_scan")
    proc = run_cli("scan", f"{small_specimen}.pos", "--range", f"{small_specimen}.rrng", "--out", d / "scan.h5",
                   "--model", REPO / "models" / "default")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return d / "scan.h5"


def test_segment_writes_analyses_of_every_method(scan_one_rank, tmp_path):
    local = tmp_path / "scan.h5"
    shutil.copyfile(scan_one_rank, local)
    proc = run_cli("segment", local)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seg = read_segmentation(local, per_ion=False)
    got = read_analyses(local)
    assert got.matches(seg)
    assert "paper" not in seg.methods                      # the default model's scan: skipped
    assert set(got.methods) == set(seg.methods) and seg.default in got.methods
    for name, r in got.methods.items():
        assert r["proxigram_at_pct"].shape == (len(EDGES_NM) - 1, len(r["elements"]))
        assert r["count"] + r["count_at_edge"] == seg.methods[name].count
        assert r["analysed_volume_nm3"] > 0.9 * 16 ** 3 * r["determined_ion_share"]
        if seg.methods[name].count:
            li = r["elements"].index("Li")
            assert r["precipitate_at_pct"][li] > r["matrix_at_pct"][li] + 5 * r["matrix_at_pct_error"][li]
            assert r["volume_fraction_ci95"][0] <= r["volume_fraction"] <= r["volume_fraction_ci95"][1]
    proc = run_cli("report", local, "--out", tmp_path / "report")
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = (tmp_path / "report" / "index.html").read_text()
    assert "proxigram.png" in page and "number density" in page.lower()
    assert (tmp_path / "report" / "proxigram.png").stat().st_size > 10_000
