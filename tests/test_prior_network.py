"""The PixelCNN prior's network: causality and receptive field by gradients, and the streaming sampler
against the naive one."""

from __future__ import annotations

import math

import pytest
import torch

from vqtok.models.base import LatentSpec
from vqtok.prior.model import Prior, PriorOptions
from vqtok.prior.network import CodePrior, Draw


def _input_gradient(
    net: CodePrior, grid: list[int], index: tuple, codebook: int = 0, cond: torch.Tensor | None = None
) -> torch.Tensor:
    """|d logits(codebook, index) / d input embedding| summed over channels: ``(*G)``."""
    codes = torch.randint(net.codebook_sizes[0], (1, net.n_q, *grid), generator=torch.Generator().manual_seed(3))
    x = net.embed(codes).detach().requires_grad_(True)
    net.embed.forward = lambda _codes: x  # feed the embedding as the leaf we differentiate by
    try:
        logits = net.logits(codes, cond)[codebook]
    finally:
        del net.embed.forward
    logits[(0, slice(None), *index)].sum().backward()
    return x.grad[0].abs().sum(0)


def _causal_field_2d(h: int, w: int, i: int, j: int, reach: int) -> torch.Tensor:
    """Positions a raster-order prior with a ``reach``-position field may see from (i, j): rows above
    within ``reach`` and ``reach - 1`` columns to each side, and in its own row up to ``reach`` to the left."""
    field = torch.zeros(h, w, dtype=torch.bool)
    field[max(0, i - reach) : i, max(0, j - reach + 1) : j + reach] = True
    field[i, max(0, j - reach) : j] = True
    return field


@pytest.mark.parametrize("kernel,layers", [(3, 3), (5, 2)])
def test_pixelcnn_sees_exactly_the_earlier_positions_of_its_field(kernel, layers):
    torch.manual_seed(0)
    net = CodePrior(2, [16], width=8, layers=layers, kernel=kernel)
    h, w = 14, 15
    reach = net.receptive_field()
    assert reach == layers * (kernel // 2) + 1
    for i, j in [(7, 7), (0, 5), (5, 0), (13, 14), (3, 13)]:
        seen = _input_gradient(net, [h, w], (i, j)) > 0
        expected = _causal_field_2d(h, w, i, j, reach)
        later = torch.zeros(h, w, dtype=torch.bool)
        later.view(-1)[i * w + j :] = True
        assert not (seen & later).any(), f"({i}, {j}) sees itself or a later position"
        # non-zero at every earlier position of the field: no blind spot
        assert torch.equal(seen, expected), f"({i}, {j}): field\n{seen.int()}\nexpected\n{expected.int()}"


def test_pixelcnn_on_a_small_map_sees_every_earlier_position():
    net = CodePrior(2, [8], width=8, layers=4, kernel=3)
    h, w = 4, 5
    for i in range(h):
        for j in range(w):
            seen = (_input_gradient(net, [h, w], (i, j)) > 0).view(-1)
            k = i * w + j
            assert seen[:k].all() and not seen[k:].any(), (i, j, seen.view(h, w).int())


def test_causal_1d_stack_sees_exactly_its_past():
    torch.manual_seed(0)
    net = CodePrior(1, [16], width=8, layers=4, kernel=3)  # dilations 1, 2, 4, 8
    reach = net.receptive_field()
    assert reach == 1 + 2 * (1 + 2 + 4 + 8)
    for t in (0, 10, 40, 63):
        seen = _input_gradient(net, [64], (t,)) > 0
        expected = torch.zeros(64, dtype=torch.bool)
        expected[max(0, t - reach) : t] = True
        assert torch.equal(seen, expected), (t, seen.nonzero().view(-1).tolist())


@pytest.mark.parametrize("dims,grid", [(1, [12]), (2, [4, 5])])
def test_residual_codebooks_are_predicted_in_depth_order(dims, grid):
    """Codebook q at a position sees codebooks < q at that position, never q itself or later ones."""
    torch.manual_seed(0)
    net = CodePrior(dims, [8, 8, 8], width=8, layers=2, kernel=3)
    codes = torch.randint(8, (1, 3, *grid))
    index = tuple(g // 2 for g in grid)
    base = [lg[(0, slice(None), *index)] for lg in net.logits(codes)]
    for q in range(3):
        changed = codes.clone()
        changed[(0, q, *index)] = (changed[(0, q, *index)] + 1) % 8
        after = [lg[(0, slice(None), *index)] for lg in net.logits(changed)]
        for p in range(3):
            same = torch.allclose(base[p], after[p])
            assert same == (p <= q), (q, p)


# ---- sampling -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dims,grid,sizes,cond_channels",
    [(2, [6, 7], [13], 0), (2, [5, 4], [9, 9], 5), (1, [50], [11], 0), (1, [30], [7, 7, 5], 4)],
)
@pytest.mark.parametrize("temperature,top_k", [(1.0, 0), (0.8, 3), (0.0, 0)])
def test_streaming_sampler_draws_what_the_naive_one_draws(dims, grid, sizes, cond_channels, temperature, top_k):
    torch.manual_seed(1)
    net = CodePrior(dims, sizes, width=12, layers=3, kernel=3, cond_channels=cond_channels).eval()
    cond = torch.randn(3, cond_channels, *grid) if cond_channels else None
    draw = Draw.seeded(3, len(sizes), grid, temperature, top_k, torch.Generator().manual_seed(7))
    fast, naive = net.sample(grid, draw, cond), net.sample_naive(grid, draw, cond)
    assert fast.shape == (3, len(sizes), *grid)
    assert torch.equal(fast, naive)
    assert temperature == 0 or len(fast.unique()) > 1  # not a trivially constant draw


def test_top_k_1_and_temperature_0_both_take_the_likeliest_code():
    torch.manual_seed(2)
    net = CodePrior(2, [20], width=8, layers=2, kernel=3).eval()
    g = torch.Generator().manual_seed(0)
    greedy = net.sample([4, 4], Draw.seeded(2, 1, [4, 4], 0.0, 0, g))
    top1 = net.sample([4, 4], Draw.seeded(2, 1, [4, 4], 1.0, 1, g))
    assert torch.equal(greedy, top1)


def test_draw_follows_the_distribution():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1]])).repeat(20000, 1)
    draw = Draw.seeded(20000, 1, [1], 1.0, 0, torch.Generator().manual_seed(0))
    codes = draw.pick(logits, 0, (0,))
    share = torch.bincount(codes, minlength=3).float() / 20000
    assert torch.allclose(share, torch.tensor([0.7, 0.2, 0.1]), atol=0.015)
    top2 = Draw.seeded(20000, 1, [1], 1.0, 2, torch.Generator().manual_seed(0)).pick(logits, 0, (0,))
    share = torch.bincount(top2, minlength=3).float() / 20000
    assert torch.allclose(share, torch.tensor([7 / 9, 2 / 9, 0]), atol=0.015)


def test_two_level_prior_bottom_depends_on_top_and_label():
    torch.manual_seed(0)
    specs = {"top": LatentSpec(1, 8, [16]), "bottom": LatentSpec(1, 4, [16])}
    prior = Prior(2, specs, PriorOptions(width=8, layers=2), n_labels=3).eval()
    top = torch.randint(16, (1, 1, 3, 3))
    bottom = torch.randint(16, (1, 1, 6, 6))
    labels = torch.tensor([0])
    base = prior.nll({"top": top, "bottom": bottom}, labels)
    other_top = prior.nll({"top": (top + 1) % 16, "bottom": bottom}, labels)
    other_label = prior.nll({"top": top, "bottom": bottom}, torch.tensor([2]))
    assert not torch.allclose(base["bottom"], other_top["bottom"])  # bottom conditioned on top
    assert not torch.allclose(base["top"], other_label["top"])  # top conditioned on the label
    g = torch.Generator().manual_seed(5)
    fast = prior.sample(2, [3, 3], torch.tensor([1, 2]), 1.0, 0, g)
    g = torch.Generator().manual_seed(5)
    naive = prior.sample(2, [3, 3], torch.tensor([1, 2]), 1.0, 0, g, naive=True)
    assert fast["top"].shape == (2, 1, 3, 3) and fast["bottom"].shape == (2, 1, 6, 6)
    assert all(torch.equal(fast[k], naive[k]) for k in fast)


def _two_class_codes(n: int, length: int, seed: int) -> tuple[list[dict[str, torch.Tensor]], torch.Tensor]:
    """``n`` 1-D code sequences: class 0 uses codes 0-3 only, class 1 codes 4-7 only (of 8)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    items = [{"codes": torch.randint(4, (1, length), generator=g) + 4 * int(c)} for c in labels]
    return items, labels


def test_label_dropout_teaches_a_conditional_prior_to_code_and_sample_without_a_label():
    from vqtok.errors import UsageError
    from vqtok.prior.data import CodeSet

    torch.manual_seed(0)
    specs = {"codes": LatentSpec(1, 1, [8])}
    items, labels = _two_class_codes(1000, 32, seed=1)  # plenty: no memorizing
    train = CodeSet(items, labels, [None] * len(items))
    prior = Prior(1, specs, PriorOptions(width=16, layers=2, label_dropout=0.5), n_labels=2)
    assert prior.knows_no_label and prior.no_label == 2
    batch = train.batch(0, 64, seed=0, hops={"codes": 1}, window=32, label_dropout=0.5, no_label=2)[1]
    assert 0.3 < (batch == 2).float().mean() < 0.7 and set(batch.tolist()) == {0, 1, 2}
    opt = torch.optim.Adam(prior.parameters(), lr=3e-3)
    for step in range(200):
        codes, batch_labels = train.batch(step, 16, seed=0, hops={"codes": 1}, window=32, label_dropout=0.5, no_label=2)
        loss = prior(codes, batch_labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    prior.eval()
    test, test_labels = _two_class_codes(10, 32, seed=2)
    codes = {"codes": torch.stack([t["codes"] for t in test])}
    given = prior.nll(codes, test_labels)["codes"][:, 0] / math.log(2)  # (B, L) bits
    none = prior.nll(codes)["codes"][:, 0] / math.log(2)
    # the first code: 2 bits (1 of 4) with the label, 3 (1 of 8) without; later ones tell the class: 2 bits
    first, later = (given[:, 0].mean().item(), none[:, 0].mean().item()), none[:, 8:].mean().item()
    assert first[0] < 2.3 and first[1] > 2.7 and later < 2.3, (first, later)
    drawn = prior.sample(40, [16], generator=torch.Generator().manual_seed(0))["codes"]
    halves = (drawn >= 4).float().mean(dim=(1, 2))
    assert ((halves < 0.1) | (halves > 0.9)).float().mean() > 0.8  # each sample keeps to one class ...
    assert 0.2 < (halves > 0.5).float().mean() < 0.8  # ... and both classes are drawn
    plain = Prior(1, specs, PriorOptions(width=16, layers=2), n_labels=2)
    with pytest.raises(UsageError, match="needs a label"):
        plain.nll(codes)


def test_label_balance_draws_every_label_alike_whatever_its_number_of_files():
    from vqtok.prior.data import CodeSet

    items = [{"codes": torch.zeros(1, 10, dtype=torch.long)} for _ in range(100)]
    codes = CodeSet(items, torch.tensor([0] * 95 + [1] * 5), [None] * 100)
    by_file = codes.batch(0, 2000, seed=0, hops={"codes": 1}, window=8)[1]
    by_label = codes.batch(0, 2000, seed=0, hops={"codes": 1}, window=8, balance="labels")[1]
    assert 0.03 < (by_file == 1).float().mean() < 0.08
    assert 0.45 < (by_label == 1).float().mean() < 0.55
    again = codes.batch(0, 2000, seed=0, hops={"codes": 1}, window=8, balance="labels")[1]
    assert torch.equal(by_label, again)  # a function of (seed, step), like every batch
