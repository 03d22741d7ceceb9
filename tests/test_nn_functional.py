"""pyrozoo.nn.functional: softplus and the Bernoulli cross-entropy without log1p, against float64 references."""

import pytest
import torch
import torch.nn.functional as F

from pyrozoo.nn import functional as PF


def _grid(dtype=torch.float32):
    """Logits across the whole range that matters, exact 0 and the far tails included."""
    return torch.cat([torch.linspace(-60, 60, 2401), torch.tensor([0.0, -0.0, 1e-8, -1e-8, 88.0, -88.0]),
                      torch.randn(1000) * 5]).to(dtype)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1.5e-7), (torch.float64, 1e-15)])
def test_softplus_matches_the_float64_reference_to_rounding(dtype, tol):
    x = _grid(dtype)
    xd = x.double()
    reference = torch.relu(xd) + torch.log1p(torch.exp(-xd.abs()))  # F.softplus is linear above 20: not exact
    # error relative to max(1, softplus): an absolute error near zero, a relative one for large |x|
    err = ((PF.softplus(x).double() - reference).abs() / reference.clamp(min=1.0)).max().item()
    assert err < 2 * tol


def test_softplus_gradient_is_the_sigmoid_including_at_zero():
    x = _grid().requires_grad_()
    (g,) = torch.autograd.grad(PF.softplus(x).sum(), x)
    assert torch.allclose(g, torch.sigmoid(x.detach()), atol=0, rtol=1e-6)
    assert g[x.detach() == 0].eq(0.5).all()  # relu' + abs' would give 0 at exactly 0


def test_bce_matches_torch_in_value_and_in_both_gradients():
    torch.manual_seed(0)
    logits = (torch.randn(64, 784) * 6).requires_grad_()
    target = torch.rand(64, 784).requires_grad_()  # soft targets: the target gradient −l is exercised too
    ours = PF.binary_cross_entropy_with_logits(logits, target)
    ref = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    assert torch.allclose(ours, ref, atol=1e-6, rtol=1e-6)
    w = torch.randn_like(ours)
    g_ours = torch.autograd.grad((ours * w).sum(), (logits, target))
    g_ref = torch.autograd.grad((ref * w).sum(), (logits, target))
    for a, b in zip(g_ours, g_ref):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("requires_grad", [False, True])
def test_bce_of_binary_targets_is_accurate_in_the_confident_tails(requires_grad):
    """Against float64: within 6e-8 + 2e-7·value where the value is below 1, within 2e-7 relative above; a
    confident correct pixel (x = 1, l = 30) costs its true 1e-13 nats, not the rounding of 30 + 1e-13 − 30."""
    logits = _grid().repeat(2).requires_grad_(requires_grad)
    target = torch.cat([torch.zeros(len(logits) // 2), torch.ones(len(logits) // 2)])
    ld, xd = logits.detach().double(), target.double()
    reference = torch.relu(ld) - ld * xd + torch.log1p(torch.exp(-ld.abs()))
    ours = PF.binary_cross_entropy_with_logits(logits, target).detach().double()
    small = reference < 1
    assert ((ours - reference).abs()[small] <= 6e-8 + 2e-7 * reference[small]).all()
    assert ((ours - reference).abs()[~small] / reference[~small]).max() < 2e-7


def test_custom_backward_passes_agree_with_finite_differences():
    x = (torch.randn(5, 7, dtype=torch.float64) * 4).requires_grad_()
    t = torch.rand(5, 7, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(PF.softplus, (x,))
    assert torch.autograd.gradcheck(PF.binary_cross_entropy_with_logits, (x, t))


def test_bce_under_broadcast_targets_gets_the_reduced_gradient():
    """S draws of logits (S, B, D) against B images (B, D), as the likelihood broadcasts them."""
    torch.manual_seed(1)
    logits = torch.randn(3, 4, 10, requires_grad=True)
    x = torch.bernoulli(torch.rand(4, 10))
    a, b = torch.broadcast_tensors(logits, x)
    (g,) = torch.autograd.grad(PF.binary_cross_entropy_with_logits(a, b).sum(), logits)
    assert torch.allclose(g, torch.sigmoid(logits.detach()) - x, atol=1e-7)


@pytest.mark.parametrize("shape", [(7,), (3, 5, 9), (2, 40000), (PF.BLOCK_NUMEL // 9 + 3, 9)])
def test_softplus_sum_over_blocks_equals_the_plain_sum(shape):
    torch.manual_seed(2)
    x = torch.randn(shape) * 8
    got = PF.softplus_sum(x)
    assert got.shape == x.shape[:-1]
    assert torch.allclose(got.double(), F.softplus(x.double()).sum(-1), rtol=1e-6, atol=1e-4)
    assert torch.equal(x, x.clone())  # the input is left alone (the blocks are written in place)


def test_softplus_sum_of_a_non_contiguous_view_and_with_autograd():
    torch.manual_seed(3)
    base = torch.randn(30, 20)
    view = base.t()  # (20, 30), non-contiguous
    assert torch.allclose(PF.softplus_sum(view), F.softplus(view).sum(-1), atol=1e-5)
    x = base.clone().requires_grad_()
    (g,) = torch.autograd.grad(PF.softplus_sum(x).sum(), x)
    assert torch.allclose(g, torch.sigmoid(base), atol=1e-7)
