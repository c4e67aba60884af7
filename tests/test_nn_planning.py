import math
import re

import pytest

from skscale.nn.planning import (
    conv_cost_estimates,
    fft_grid_size,
    fft_split,
    next_fast_size,
    select_conv_impl,
)


def brute_force_fast_size(n):
    while True:
        m = n
        for prime in (2, 3, 5):
            while m % prime == 0:
                m //= prime
        if m == 1:
            return n
        n += 1


def test_next_fast_size_is_the_smallest_5_smooth_size():
    assert [next_fast_size(n) for n in range(1, 1200)] == [brute_force_fast_size(n) for n in range(1, 1200)]
    assert next_fast_size(181) == 192 and next_fast_size(2**20 + 1) == brute_force_fast_size(2**20 + 1)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_next_fast_size_rejects_bad_sizes(bad):
    with pytest.raises(ValueError, match=rf"n must be an integer >= 1, got {re.escape(repr(bad))}\."):
        next_fast_size(bad)


def test_fft_grid_size_leaves_room_for_half_a_kernel_on_fast_sizes():
    for height, width, size in [(168, 168, 25), (7, 12, 25), (20, 23, 9), (6, 5, 13)]:
        fft_h, fft_w = fft_grid_size(height, width, size)
        assert fft_h == next_fast_size(max(height + size // 2, size))
        assert fft_w == next_fast_size(max(width + size // 2, size))
    assert fft_grid_size(168, 168, 25) == (180, 180)


def test_auto_choice_is_deterministic_and_follows_the_cost_model():
    shapes = [
        (size, image, c_in, c_out, batch, backward)
        for size in (3, 5, 9, 15, 25, 41)
        for image in (7, 28, 168)
        for c_in, c_out in ((1, 16), (32, 63))
        for batch in (1, 32)
        for backward in (True, False)
    ]
    for size, image, c_in, c_out, batch, backward in shapes:
        kwargs = dict(batch_size=batch, backward=backward)
        choices = {select_conv_impl(size, image, image, c_in, c_out, **kwargs) for _ in range(3)}
        assert len(choices) == 1
        direct, fft = conv_cost_estimates(size, image, image, c_in, c_out, **kwargs)
        expected = "fft" if size > 3 and fft < direct else "direct"
        assert choices == {expected}
    # The measured regimes: small kernels go direct, large ones through the FFT.
    assert select_conv_impl(3, 168, 168, 32, 63, batch_size=32) == "direct"
    assert select_conv_impl(5, 168, 168, 1, 16, batch_size=8) == "direct"
    assert select_conv_impl(41, 168, 168, 1, 16, batch_size=8) == "fft"
    assert select_conv_impl(15, 28, 28, 32, 63, batch_size=32) == "fft"
    # The direct cost grows with the kernel, the FFT cost hardly does.
    small, large = conv_cost_estimates(9, 168, 168, 8, 8), conv_cost_estimates(33, 168, 168, 8, 8)
    assert large[0] > 10 * small[0] and large[1] < 1.3 * small[1]


def test_training_cost_counts_the_padding_taps_of_kernels_as_wide_as_the_image():
    # oneDNN's backward runs every tap of the kernel, its forward only those on the image.
    def direct(size, image, backward):
        return conv_cost_estimates(size, image, image, 1, 1, backward=backward)[0]

    # 7-pixel maps: 13-pixel kernels cost 13 / 7 per axis more than 7-pixel ones in the
    # backward, (7 * 7) / (4 + 5 + 6 + 7 + 6 + 5 + 4) = 49 / 37 per axis in the forward.
    assert direct(13, 7, False) / direct(7, 7, False) == pytest.approx((49 / 37) ** 2)
    on_image, every_tap = 37**2, (7 * 7) ** 2
    # A kernel as wide as the image counts the backward's padding taps too.
    assert direct(7, 7, True) == pytest.approx((on_image + 2 * every_tap) / 3)
    expected = (49**2 + 2 * (7 * 13) ** 2) / (on_image + 2 * every_tap)
    assert direct(13, 7, True) / direct(7, 7, True) == pytest.approx(expected)
    # Narrower kernels keep the forward's taps in training too.
    assert direct(13, 28, True) == direct(13, 28, False)
    # The measured cases (calibration in benchmarks/results/speed.md, section 8): on 7
    # pixels, 128 x 63 -> 95, the FFT trains faster with kernel 7 (37.3 vs 71.0 ms; a
    # threshold at kernels wider than the image took the direct path) and kernel 11; with
    # the matrix DFT of small maps it infers faster too.
    assert select_conv_impl(7, 7, 7, 63, 95, batch_size=128, backward=True) == "fft"
    assert select_conv_impl(11, 7, 7, 63, 95, batch_size=128, backward=True) == "fft"
    assert select_conv_impl(11, 7, 7, 63, 95, batch_size=128, backward=False) == "fft"


@pytest.mark.parametrize("backward", [True, False])
@pytest.mark.parametrize("grouped", [True, False])
def test_fft_split_is_the_cheapest_cut_of_the_modelled_costs(backward, grouped):
    sizes, n_scales, image, c_in, c_out, batch = [3, 9, 17, 33], [1, 2, 1, 1], 64, 8, 16, 4

    def costs(size, n):
        return conv_cost_estimates(
            size,
            image,
            image,
            c_in * (n if grouped else 1),
            c_out * n,
            groups=n if grouped else 1,
            batch_size=batch,
            backward=backward,
        )

    expected = []
    for cut in range(len(sizes) + 1):
        direct = sum(costs(size, n)[0] for size, n in zip(sizes[:cut], n_scales[:cut]))
        fft = costs(sizes[-1], sum(n_scales[cut:]))[1] if cut < len(sizes) else 0.0
        expected.append(math.inf if cut < len(sizes) and sizes[cut] <= 3 else direct + fft)
    best = min(range(len(expected)), key=lambda cut: (expected[cut], -cut))
    got = fft_split(
        sizes, n_scales, image, image, c_in, c_out, grouped=grouped, batch_size=batch, backward=backward
    )
    assert got == best and 0 < got < len(sizes)  # a mixed plan: 3 direct, 33 through the FFT
    # A single correlation is the one-call case of the same rule.
    for size in (3, 9, 33):
        n_direct = fft_split([size], [4], image, image, c_in, c_out, grouped=True, batch_size=batch)
        assert select_conv_impl(size, image, image, 4 * c_in, 4 * c_out, groups=4, batch_size=batch) == (
            "direct" if n_direct else "fft"
        )
