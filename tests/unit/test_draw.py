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


# --- sprites per bone and background pictures ----------------------------------------------


def _pose() -> np.ndarray:
    from workers.models.motion import MotionConfig, MotionRNN, frames_for

    model = MotionRNN(MotionConfig(hidden=8))
    return frames_for(model, [("walk", 4)], 0, [2])[0]  # (J, 2)


def test_a_bone_sprite_replaces_its_capsule_between_the_joints() -> None:
    from farm.families import BONES
    from workers.draw import premultiplied, render_skeletons, to_pixels

    pose, w, h, scale = _pose(), 160, 160, 60.0
    centre = pose[0] + np.array([0.0, 0.3])
    red = np.zeros((8, 2, 4), np.uint8)
    red[...] = (255, 0, 0, 255)
    frame = render_skeletons(pose[None], w, h, centre=centre, scale=scale,
                             sprites={"r_shin": premultiplied(red)})[0]  # fmt: skip
    plain = render_skeletons(pose[None], w, h, centre=centre, scale=scale)[0]
    knee, foot = to_pixels(pose[list(BONES["r_shin"])], centre, scale, w, h)
    mid = np.rint((knee + foot) / 2 - 0.5).astype(int)
    assert tuple(frame[mid[1], mid[0]]) == (255, 0, 0)  # the sprite, opaque, at the shin
    assert tuple(plain[mid[1], mid[0]]) != (255, 0, 0)
    far = np.abs(frame.astype(int) - plain).max(-1) > 0
    ys, xs = np.nonzero(far)
    span = np.hypot(*(foot - knee)) + 2 * 0.045 * scale
    # Changed pixels stay within the sprite's rectangle around the shin.
    assert (
        np.hypot(xs + 0.5 - (knee[0] + foot[0]) / 2, ys + 0.5 - (knee[1] + foot[1]) / 2).max()
        <= span
    )


def test_a_transparent_sprite_leaves_the_frame_unchanged_but_for_the_capsule() -> None:
    from workers.draw import premultiplied, render_skeletons, to_pixels

    pose = _pose()
    clear = np.zeros((6, 6, 4), np.uint8)
    centre = pose[0]
    with_clear = render_skeletons(pose[None], 96, 96, centre=centre, scale=30.0,
                                  sprites={"head": premultiplied(clear)})[0]  # fmt: skip
    plain = render_skeletons(pose[None], 96, 96, centre=centre, scale=30.0)[0]
    differs = np.abs(with_clear.astype(int) - plain).max(-1) > 0
    assert differs.any()  # the head disc is gone, and nothing else changed
    head = to_pixels(pose[3], centre, 30.0, 96, 96)
    ys, xs = np.nonzero(differs)
    assert np.hypot(xs + 0.5 - head[0], ys + 0.5 - head[1]).max() <= 0.12 * 30.0 + 1


def test_backdrop_repeats_and_slides_smoothly() -> None:
    from workers.draw import backdrop

    pic = np.zeros((4, 10, 3), np.uint8)
    pic[:, :, 0] = np.arange(10) * 20
    assert np.array_equal(backdrop(pic, 25, 0.0), backdrop(pic, 25, 10.0))  # it repeats
    shifted = backdrop(pic, 5, 2.0)
    assert np.array_equal(shifted[0, :, 0], [40, 60, 80, 100, 120])
    half = backdrop(pic, 3, 0.5)
    assert np.allclose(half[0, :, 0], [10, 30, 50])


def test_the_box_drawing_equals_the_full_frame_with_a_picture_and_sprites() -> None:
    from workers.draw import backdrop, premultiplied, render_skeletons
    from workers.modes.motion import CENTRE_Y, VIEW_HEIGHT, Scene, draw_frame, style_for

    pose, w, h = _pose(), 180, 120
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 255, (h, 70, 3), dtype=np.uint8)
    sprite = rng.integers(0, 255, (12, 5, 4), dtype=np.uint8)
    scene = Scene(style_for(None), h / VIEW_HEIGHT, picture,
                  {"chest": premultiplied(sprite), "head": premultiplied(sprite)})  # fmt: skip
    for dx in (0.0, 0.37):
        centre = np.array([pose[0, 0] + dx, CENTRE_Y])
        box = draw_frame(pose, centre, w, h, scene)
        bg = np.clip(np.rint(backdrop(picture, w, centre[0] * scene.scale - w / 2)), 0, 255)
        full = render_skeletons(
            pose[None], w, h, centre=centre, scale=scene.scale,
            background=bg.astype(np.uint8), sprites=scene.sprites,
        )[0]  # fmt: skip
        assert np.abs(box.astype(int) - full).max() <= 1


def test_writing_frame_by_frame_equals_drawing_each_frame_whole() -> None:
    from workers.draw import render_strokes
    from workers.writing import Written, fit, frames_for, visible_segments

    rng = np.random.default_rng(4)
    points = np.cumsum(rng.normal(0, 3, (60, 2)), axis=0)
    pen_down = rng.random(59) > 0.2
    written = Written(points=points, pen_down=pen_down, glyph_ends=[30, 59])
    w, h, n = 64, 48, 20
    order = [0, 3, 4, 9, 7, 19, 19, 2]  # growing ink, a repeat, and going back
    got = frames_for(written, order, n, w, h, line_width=2.0, hold=4)
    pix = fit(points, w, h)
    for frame, f in zip(got, order, strict=True):
        count = visible_segments(59, f, n, hold=4)
        want = render_strokes(pix, pen_down, w, h, line_width=2.0, segments=count)
        assert np.array_equal(frame, want), f
