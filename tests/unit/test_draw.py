"""Vector drawing: capsules anti-aliased over one pixel, skeletons and partial strokes."""

from __future__ import annotations

import numpy as np

from workers.datasets.motion import forward_kinematics
from workers.draw import SkeletonStyle, capsule_alpha, polyline, render_skeletons, render_strokes

WHITE = (255, 255, 255)
BLACK = (0, 0, 0)


def _edge_width(profile: np.ndarray) -> float:
    """Distance in pixels between the 10% and 90% crossings of a rising coverage profile,
    by linear interpolation between pixel centres."""

    def crossing(level: float) -> float:
        i = int(np.argmax(profile >= level))
        lo, hi = profile[i - 1], profile[i]
        return i - 1 + (level - lo) / (hi - lo)

    return crossing(0.9) - crossing(0.1)


def test_a_segment_covers_its_pixels_and_its_edge_is_at_most_one_and_a_half_pixels() -> None:
    img = render_strokes(
        np.array([[8.0, 20.3], [56.0, 20.3]]), np.array([True]), 64, 40,
        line_width=8.0, colour=WHITE, background=BLACK,
    )  # fmt: skip
    cov = img[..., 0].astype(np.float64) / 255
    assert (cov[18:23, 12:52] == 1.0).all(), "the inside is solid"
    assert (cov[:14] == 0).all() and (cov[27:] == 0).all(), "nothing far from the line"
    column = cov[:, 32]
    assert _edge_width(column[:21]) <= 1.5
    assert _edge_width(column[20:][::-1]) <= 1.5
    # the edges sit where they should: half a line width from the axis
    assert abs(column.sum() - 8.0) < 0.05


def test_capsule_alpha_is_a_one_pixel_smoothstep_of_the_distance() -> None:
    a, b = np.array([0.0, 0.0]), np.array([10.0, 0.0])
    xs = np.array([5.0, 5.0, 5.0, 5.0, -3.0])
    ys = np.array([0.0, 2.5, 3.0, 3.5, 0.0])
    alpha = capsule_alpha(xs, ys, a, b, 3.0)
    np.testing.assert_allclose(alpha, [1.0, 1.0, 0.5, 0.0, 0.5], atol=1e-6)


def test_polyline_follows_the_pen() -> None:
    points, down = polyline([[1, 0, 0], [1, 0, 1], [0, 2, 0], [1, 0, 1]])
    np.testing.assert_array_equal(points, [[0, 0], [1, 0], [2, 0], [2, 2], [3, 2]])
    assert down.tolist() == [False, True, False, True]


def test_partial_strokes_draw_only_the_first_segments() -> None:
    points = np.array([[5.0, 5.0], [25.0, 5.0], [25.0, 25.0]])
    down = np.array([True, True])
    none = render_strokes(points, down, 32, 32, line_width=2, colour=WHITE, background=BLACK,
                          segments=0)  # fmt: skip
    one = render_strokes(points, down, 32, 32, line_width=2, colour=WHITE, background=BLACK,
                         segments=1)  # fmt: skip
    both = render_strokes(points, down, 32, 32, line_width=2, colour=WHITE, background=BLACK)
    assert none.max() == 0
    assert one[5, 15, 0] == 255 and one[15, 25, 0] == 0
    assert both[15, 25, 0] == 255


def test_skeleton_draws_the_same_figure_at_any_resolution() -> None:
    pose = forward_kinematics(np.zeros(16), np.array([0.0, 0.84]))[None]  # (1, J, 2)
    style = SkeletonStyle(far=WHITE, torso=WHITE, near=WHITE, head=WHITE, background=BLACK)
    shares = []
    for size in (128, 512):
        img = render_skeletons(pose, size, size, centre=np.array([0.0, 0.85]),
                               scale=size / 2.0, style=style)  # fmt: skip
        assert img.shape == (1, size, size, 3) and img.dtype == np.uint8
        ink = img[0, ..., 0] / 255
        shares.append(ink.mean())
        # the head is a disc above the neck, at the top of the figure
        rows = np.nonzero(ink.max(axis=1) > 0.5)[0]
        assert abs(rows.min() / size - (0.5 - (1.48 + 0.12 - 0.85) / 2.0)) < 2 / size
    assert abs(shares[0] - shares[1]) / shares[1] < 0.05


def test_skeleton_frames_batch_with_their_own_cameras() -> None:
    a = np.zeros((2, 16))
    root = np.array([[0.0, 0.84], [0.5, 0.84]])
    pose = forward_kinematics(a, root)
    follow = render_skeletons(pose, 48, 48, centre=np.stack([root[:, 0], [0.85, 0.85]], 1),
                              scale=20.0)  # fmt: skip
    fixed = render_skeletons(pose, 48, 48, centre=np.array([0.0, 0.85]), scale=20.0)
    np.testing.assert_array_equal(follow[0], follow[1])
    assert not np.array_equal(fixed[0], fixed[1])
