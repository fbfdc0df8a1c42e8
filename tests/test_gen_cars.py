"""Tests for the street-scene generator (``cars``) and the FOMO grid of car centres."""

import numpy as np
import pytest

from tinyml_edu import datasets
from tinyml_edu.generators import camera
from tinyml_edu.generators import cars as g

SMALL = 0.1
SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def small() -> dict[str, np.ndarray]:
    return g.generate(scale=SMALL)


@pytest.fixture(scope="module")
def shipped() -> datasets.Dataset:
    return datasets.load("cars")


def test_metadata():
    assert g.TASK == "counting" and g.CLASSES == ("car",) and g.LICENSE == "CC0-1.0"
    assert g.SIZE // g.FOMO_CELLS == 8  # FOMO's stride on a 96-pixel frame


def test_keys_shapes_dtypes(small):
    for split, n in g.split_counts(SMALL).items():
        x, y, c = small[f"x_{split}"], small[f"y_{split}"], small[f"centroids_{split}"]
        assert x.shape == (n, 96, 96, 1) and x.dtype == np.uint8
        assert y.shape == (n,) and y.dtype == np.int64
        assert c.shape == (n, g.MAX_CARS, 2) and c.dtype == np.float32
        for key in ("group", "condition", "light"):
            assert small[f"{key}_{split}"].shape == (n,)


def test_counts_match_the_centroids_inside_the_frame(small):
    for split in SPLITS:
        c, y = small[f"centroids_{split}"], small[f"y_{split}"]
        present = ~np.isnan(c[..., 0])
        np.testing.assert_array_equal(present.sum(axis=1), y)
        # Padding only at the end, and every centre is inside the frame.
        assert all(not row[k:].any() for row, k in zip(present, y, strict=True))
        assert (c[present] >= 0).all() and (c[present] < 96).all()


def test_counts_vary_from_empty_to_busy(shipped):
    y = np.concatenate([shipped.split(s)[1] for s in SPLITS])
    assert y.min() == 0 and y.max() == g.MAX_CARS
    assert len(np.unique(y)) > 10
    assert 0.03 < np.mean(y == 0) < 0.25  # a few empty streets, not many


def test_deterministic_and_seed_dependent(small):
    again = g.generate(scale=SMALL)
    other = g.generate(seed=g.DEFAULT_SEED + 1, scale=SMALL)
    for key in small:
        np.testing.assert_array_equal(small[key], again[key])
    assert not np.array_equal(small["x_train"], other["x_train"])


def test_a_car_is_drawn_around_its_centre_and_as_long_as_its_body():
    rng = np.random.default_rng(3)
    rr, cc = camera.coords()
    vehicles = g._place(rng, [g.Lane((48.0, 48.0), 0.0)], 3.0, 1.0, np.zeros(rr.shape, bool))
    car = next(v for v in vehicles if v["body"] != "motorcycle"
               and 15 < v["centre"][1] < 81)  # whole, not cut by the frame's edge
    albedo = np.full(rr.shape, 0.5)
    g._draw_vehicle(rng, albedo, rr, cc, car)
    rows, cols = np.nonzero(albedo != 0.5)
    assert abs(rr[rows, 0].mean() - car["centre"][0]) < 1
    assert abs(cc[0, cols].mean() - car["centre"][1]) < 1
    # This lane runs along the columns: the car's extent there is its length.
    assert np.ptp(cc[0, cols]) == pytest.approx(car["length"], abs=1)
    assert np.ptp(rr[rows, 0]) == pytest.approx(car["width"], abs=1)


def test_night_frames_are_darker_and_show_lights(shipped):
    x = np.concatenate([shipped.split(s)[0] for s in SPLITS])[..., 0]
    cond = np.concatenate([shipped.arrays[f"condition_{s}"] for s in SPLITS])
    y = np.concatenate([shipped.split(s)[1] for s in SPLITS])
    night, day = cond == "night", cond == "day"
    assert np.median(x[night].mean(axis=(1, 2))) < np.median(x[day].mean(axis=(1, 2))) - 20
    # Head-lights saturate the sensor in most busy night frames, almost never by day.
    busy_night = night & (y >= 4)
    assert np.mean((x[busy_night] == 255).any(axis=(1, 2))) > 0.5


def test_held_out_streets_differ(small, shipped):
    groups = {s: set(small[f"group_{s}"]) for s in SPLITS}
    assert groups["train"] == set(g.FAMILIES["train"])
    assert not groups["train"] & groups["test"] and not groups["val"] & groups["test"]
    assert not groups["train"] & groups["val"]
    # Test streets are not axis-aligned like most training streets: the share of edge energy
    # along the frame's axes is lower in test frames (by day, where the street is visible).
    def axis_share(x):
        x = x[..., 0].astype(float)
        gr, gc = np.diff(x, axis=1)[:, :, :-1], np.diff(x, axis=2)[:, :-1, :]
        angle = np.arctan2(gr, gc)
        weight = np.hypot(gr, gc)
        aligned = np.abs(np.sin(2 * angle)) < 0.3
        return (weight * aligned).sum(axis=(1, 2)) / weight.sum(axis=(1, 2))

    share = {s: axis_share(shipped.split(s)[0][shipped.arrays[f"condition_{s}"] == "day"])
             for s in ("train", "test")}
    assert np.median(share["test"]) < np.median(share["train"]) - 0.03


def test_trees_never_hide_more_than_half_of_a_counted_car():
    rng = np.random.default_rng(0)
    rr, cc = camera.coords()
    canopy = np.zeros(rr.shape, bool)
    canopy[:, :96] = True  # a wall of leaves over the left half of the frame
    lanes = [g.Lane((48.0, 48.0), 0.0, 0.0)]
    vehicles = g._place(rng, lanes, 3.0, 1.0, np.zeros(rr.shape, bool))
    assert vehicles
    kept = [v for v in vehicles if (v["mask"] & canopy[v["window"]]).sum()
            <= 0.5 * v["mask"].sum()]
    assert all(v["centre"][1] > 46 for v in kept)  # cars under the leaves were dropped


# ---------------------------------------------------------------------------------------------
# FOMO grid and the loader


def test_centroid_grid_counts_centres_per_8_pixel_cell():
    c = np.full((2, 4, 2), np.nan, np.float32)
    c[0, 0] = (0.0, 0.0)
    c[0, 1] = (7.9, 7.9)  # same cell as (0, 0)
    c[0, 2] = (95.9, 8.0)
    c[1, 0] = (50.0, 20.0)
    grid = datasets.centroid_grid(c)
    assert grid.shape == (2, 12, 12) and grid.dtype == np.int64
    assert grid[0, 0, 0] == 2 and grid[0, 11, 1] == 1 and grid[0].sum() == 3
    assert grid[1, 6, 2] == 1 and grid[1].sum() == 1
    assert datasets.centroid_grid(c, size=96, cells=6)[0, 0, 0] == 2
    with pytest.raises(ValueError, match="choose cells that divide size"):
        datasets.centroid_grid(c, cells=7)
    with pytest.raises(ValueError, match="shape"):
        datasets.centroid_grid(c[0])


def test_shipped_entry_and_loader(shipped):
    info = shipped.info
    assert info.task == "counting" and info.classes == ("car",) and info.seed == g.DEFAULT_SEED
    assert info.input_shape == (96, 96, 1) and info.splits == g.FRAMES
    assert (datasets.data_dir() / info.datasheet).is_file()
    x, y = shipped.split("train")
    assert x.dtype == np.uint8 and y.dtype == np.int64
    grid = datasets.centroid_grid(shipped.centroids("train"))
    np.testing.assert_array_equal(grid.sum(axis=(1, 2)), y)
    assert set(shipped.groups("test")) == set(g.FAMILIES["test"])
    with pytest.raises(datasets.UnknownNameError, match="unknown split"):
        shipped.centroids("training")


@pytest.mark.slow
def test_regenerating_reproduces_the_shipped_file_byte_for_byte(tmp_path):
    shipped = datasets.info("cars")
    regenerated = datasets.generate("cars", root=tmp_path)
    assert regenerated.files[0].sha256 == shipped.files[0].sha256
    assert regenerated.arrays_sha256 == shipped.arrays_sha256
