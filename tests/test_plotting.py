"""The helpers every figure's plot shares (`zfkeras.report.plotting`), against hand-computed grids."""

import numpy as np
import pytest

from zfkeras.report.plotting import compact_ranges, tile, tile_factor, upscale
from zfkeras.report.figures.atlas import card_image


def test_tile_places_images_row_major_with_fill_between_and_in_unused_cells():
    images = np.arange(1, 4, dtype=np.uint8).reshape(3, 1, 1, 1) * np.ones((3, 2, 2, 1), np.uint8)
    got = tile(images, pad=1, fill=9)  # 3 images -> 2 columns, 2 rows
    expected = np.array([
        [1, 1, 9, 2, 2],
        [1, 1, 9, 2, 2],
        [9, 9, 9, 9, 9],
        [3, 3, 9, 9, 9],
        [3, 3, 9, 9, 9],
    ], np.uint8)[..., None]
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == np.uint8


@pytest.mark.parametrize("shape", [(0, 2, 2, 3), (2, 2, 3)])
def test_tile_rejects_what_is_not_a_stack_of_images(shape):
    with pytest.raises(ValueError, match="non-empty"):
        tile(np.zeros(shape))


def test_upscale_repeats_each_pixel_factor_times_on_the_image_axes_only():
    x = np.array([[[1, 2], [3, 4]]])  # (1, 2, 2)
    np.testing.assert_array_equal(upscale(x, 2), [[[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]])
    np.testing.assert_array_equal(upscale(x[0], 3, axes=(0, 1))[:, 0], [1, 1, 1, 3, 3, 3])
    assert upscale(x, 1) is x


@pytest.mark.parametrize("side, min_side, factor", [(7, 48, 7), (48, 48, 1), (49, 48, 1), (13, 48, 4), (0, 48, 48)])
def test_tile_factor_is_the_smallest_whole_factor_reaching_min_side(side, min_side, factor):
    assert tile_factor(side, min_side) == factor


def test_compact_ranges_joins_runs():
    assert compact_ranges([10, 9, 1, 2, 3, 7, 3]) == "1-3, 7, 9-10"
    assert compact_ranges([]) == ""


def test_card_image_is_projections_gap_patches():
    proj = np.zeros((4, 1, 1, 3), np.uint8)  # 4 tiles -> 2x2 grid
    patch = np.full((4, 1, 1, 3), 7, np.uint8)
    card = card_image(proj, patch, factor=2, pad=1, gap=3)
    # each grid: 2 tiles of 2 px + 1 px pad = 5 px; card = 5 + 3 + 5
    assert card.shape == (5, 13, 3)
    np.testing.assert_array_equal(card[:, 5:8], 255)  # the gap
    np.testing.assert_array_equal(card[0:2, 0:2], 0)  # first projection, upscaled x2
    np.testing.assert_array_equal(card[2, 0:5], 255)  # pad row between grid rows
    np.testing.assert_array_equal(card[3:5, 11:13], 7)  # last patch
