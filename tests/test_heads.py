"""Loss heads against code nobody here wrote (pytorch-metric-learning 2.9.0), the papers'
formulas written out independently, autograd's gradcheck, and their public contract."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytorch_metric_learning import losses as pml

from marginlab.losses.heads import HEAD_LOSSES, HEAD_PARAMS, MarginHead, build_head, head_defaults
from marginlab.losses.margins import LOSSES, sphereface_lambda
from marginlab.losses.registry import ADAPTIVE_LOSSES, loss_spec
from marginlab.params import PARAMS, Param

F64 = torch.float64
# The 2017–2020 family; the post-2020 heads (running state, per-sample margins) have their own
# contract tests, with MagFace's ordered pairs, in tests/test_losses_post2020.py.
CLASSIC = tuple(loss for loss in HEAD_LOSSES if not loss_spec(loss).adaptive)
# PML 2.9 calls scipy.special.binom on tensors, which NumPy 2 warns about; not our code.
pytestmark = pytest.mark.filterwarnings("ignore:__array_wrap__ must accept:DeprecationWarning")


def _batch(dim: int, classes: int, size: int = 32, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(size, dim, generator=generator, dtype=F64) * 3
    labels = torch.randint(0, classes, (size,), generator=generator)
    return features, labels


def _loss_and_grads(head: MarginHead, features: torch.Tensor, labels: torch.Tensor):
    x = features.clone().requires_grad_()
    head.zero_grad()
    loss = head.compute_loss(x, labels)
    loss.backward()
    return loss.detach(), x.grad, head.weight.grad


# ----- oracle: pytorch-metric-learning 2.9.0 (requirements-dev.txt) ------------------------------
# PML keeps its class weights as W (d, C), uses a mean reduction, and gets these arguments:
# ArcFaceLoss's margin is in DEGREES; NormalizedSoftmaxLoss's temperature is 1/s; SphereFaceLoss
# scales by ‖x‖ (× scale = 1) with W normalised, has no λ (so λ = 0 here) and an integer m.
ORACLES = {
    "arcface": (
        {"s": 64.0, "m2": 0.5},
        lambda d, c: pml.ArcFaceLoss(c, d, margin=math.degrees(0.5), scale=64.0),
    ),
    "arcface-small": (
        {"s": 16.0, "m2": 0.2},
        lambda d, c: pml.ArcFaceLoss(c, d, margin=math.degrees(0.2), scale=16.0),
    ),
    "cosface": (
        {"s": 64.0, "m3": 0.35},
        lambda d, c: pml.CosFaceLoss(c, d, margin=0.35, scale=64.0),
    ),
    "sphereface": (
        {"sphere_m": 4, "lam": 0.0, "lambda_schedule": False},
        lambda d, c: pml.SphereFaceLoss(c, d, margin=4, scale=1.0),
    ),
    "sphereface-m3": (
        {"sphere_m": 3, "lam": 0.0, "lambda_schedule": False},
        lambda d, c: pml.SphereFaceLoss(c, d, margin=3, scale=1.0),
    ),
    "normface": (
        {"s": 20.0},
        lambda d, c: pml.NormalizedSoftmaxLoss(c, d, temperature=1 / 20.0),
    ),
}


@pytest.mark.parametrize("dim", [2, 3, 512])
@pytest.mark.parametrize("case", list(ORACLES))
def test_matches_pytorch_metric_learning(case: str, dim: int) -> None:
    params, make_oracle = ORACLES[case]
    classes = 10
    features, labels = _batch(dim, classes, size=64, seed=dim)
    torch.manual_seed(dim)
    oracle = make_oracle(dim, classes).to(F64)
    head = build_head(case.split("-")[0], dim, classes, **params).to(F64)
    with torch.no_grad():
        head.weight.copy_(oracle.W.t())

    loss, grad_x, grad_w = _loss_and_grads(head, features, labels)
    x = features.clone().requires_grad_()
    expected = oracle(x, labels)
    expected.backward()

    torch.testing.assert_close(loss, expected.detach(), atol=1e-5, rtol=0)
    # All four PML formulas are the papers', so the gradients must agree too.
    torch.testing.assert_close(grad_x, x.grad, atol=1e-8, rtol=1e-6)
    torch.testing.assert_close(grad_w, oracle.W.grad.t(), atol=1e-8, rtol=1e-6)


def test_oracle_batches_reach_the_arcface_fallback_region() -> None:
    """In 2-D many samples start past θ = π − m: the fallback branch is compared to PML above."""
    features, labels = _batch(2, 10, size=64, seed=2)
    torch.manual_seed(2)
    weights = pml.ArcFaceLoss(10, 2, margin=math.degrees(0.5)).W.t().to(F64)
    cos_y = F.cosine_similarity(features, weights[labels], dim=1)
    assert (cos_y < math.cos(math.pi - 0.5)).sum() >= 3


# ----- the papers' formulas, written out here, for the heads PML does not have ----------------
def _direct_logits(head: MarginHead, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """z from LOSSES.md's table, computed without target_logit (no clamp needed: random data)."""
    p = head.params()
    rows = torch.arange(len(y))
    if head.loss in ("softmax", "center"):
        return x @ head.weight.t() + (head.bias if head.bias is not None else 0)
    w = head.subcenter_weights()
    w = w / w.norm(dim=-1, keepdim=True)
    cos = torch.einsum("bd,ckd->bck", x / x.norm(dim=1, keepdim=True), w).amax(dim=2)
    theta = torch.acos(cos[rows, y])
    if head.loss == "sphereface":
        lam, m = sphereface_lambda(head.iteration), p["sphere_m"]
        k = torch.floor(m * theta / math.pi)
        psi = (-1.0) ** k * torch.cos(m * theta) - 2 * k
        target = (lam * torch.cos(theta) + psi) / (1 + lam)
        z = cos.clone()
        z[rows, y] = target
        return x.norm(dim=1, keepdim=True) * z
    m1, m2, m3 = p.get("m1", 1.0), p.get("m2", 0.0), p.get("m3", 0.0)
    z = cos.clone()
    z[rows, y] = torch.cos(m1 * theta + m2) - m3
    return p["s"] * z


DIRECT = {
    "softmax": {"bias": True},
    "center": {"center_lambda": 0.0},
    "sphereface": {},  # λ from the schedule at iteration 1: 892.857
    "sphereface-arccos": {"s": 30.0, "m1": 1.35},
    "combined": {"s": 30.0, "m1": 1.0, "m2": 0.3, "m3": 0.2},
    "combined-cm2": {"s": 30.0, "m1": 0.9, "m2": 0.4, "m3": 0.15},
    "subcenter-arcface": {"s": 30.0, "m2": 0.5, "k": 3},
}


@pytest.mark.parametrize("case", list(DIRECT))
def test_logits_match_the_papers_formulas(case: str) -> None:
    loss = case.removesuffix("-cm2")
    head = build_head(loss, 8, 6, **DIRECT[case]).to(F64)
    if head.loss in ("softmax", "center") and head.bias is not None:
        torch.nn.init.normal_(head.bias)
    x, y = _batch(8, 6, size=40)
    if loss != "sphereface":  # keep every θ + m2 < π: no fallback in the direct formula
        own = head.subcenter_weights()[y, 0]
        x = 0.3 * x + 4 * own / own.norm(dim=1, keepdim=True)  # θ_y < 40°
    torch.testing.assert_close(head(x, y), _direct_logits(head, x, y), atol=1e-10, rtol=1e-10)


def test_sphereface_lambda_anneals_with_after_step() -> None:
    head = build_head("sphereface", 3, 4)
    x, y = _batch(3, 4, size=8)
    assert head.iteration == 1 and head.spec.lam == pytest.approx(892.857, abs=1e-3)
    for _ in range(99):
        head.after_step(x, y)
    assert head.iteration == 100 and head.spec.lam == pytest.approx(76.923, abs=1e-3)
    head.double()
    torch.testing.assert_close(head(x, y), _direct_logits(head, x, y), atol=1e-10, rtol=1e-10)
    head.set_params(lambda_schedule=False, lam=2.5)
    assert head.spec.lam == 2.5 and head.current_lambda == 2.5
    # the iteration is training state: it survives a state_dict round trip
    fresh = build_head("sphereface", 3, 4).double()
    fresh.load_state_dict(head.state_dict())
    assert fresh.iteration == 100


# ----- gradcheck ---------------------------------------------------------------------------------
GRADCHECK = [
    ("softmax", {"bias": True}),
    ("center", {"center_lambda": 0.5}),
    ("normface", {}),
    ("sphereface", {}),
    ("sphereface", {"lambda_schedule": False, "lam": 0.0, "sphere_m": 3}),
    ("sphereface-arccos", {}),
    ("cosface", {}),
    ("arcface", {"m2": 0.5}),
    ("arcface", {"m2": 1.5, "policy": "none"}),  # the table's largest m2
    ("combined", {"m1": 1.2, "m2": 0.3, "m3": 0.2}),
    ("subcenter-arcface", {"k": 2}),
    ("arcface", {"center_lambda": 0.3}),
]


class _Loss(torch.nn.Module):
    def __init__(self, head: MarginHead) -> None:
        super().__init__()
        self.head = head

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.head.compute_loss(x, y)


@pytest.mark.parametrize(("loss", "params"), GRADCHECK)
def test_gradcheck(loss: str, params: dict) -> None:
    torch.manual_seed(1)
    head = build_head(loss, 3, 4, **params).double()
    if head.centers is not None:
        head.centers.normal_()
    x, y = _batch(3, 4, size=6, seed=3)
    wrapped = _Loss(head)
    names = [name for name, _ in head.named_parameters()]

    def loss_of(x: torch.Tensor, *values: torch.Tensor) -> torch.Tensor:
        state = {f"head.{name}": value for name, value in zip(names, values, strict=True)}
        return torch.func.functional_call(wrapped, state, (x, y))

    inputs = (x.requires_grad_(), *(p.detach().clone().requires_grad_() for p in head.parameters()))
    assert torch.autograd.gradcheck(loss_of, inputs, eps=1e-6, atol=1e-5)


# ----- finite at the worst places (hypothesis) ------------------------------------------------
def _extreme_params(loss: str) -> st.SearchStrategy[dict]:
    """Any values of the one parameter table (params.py), its ends included: what a slider,
    a URL or the CLI can ask for must train without NaN."""

    def strategy(param: Param) -> st.SearchStrategy:
        if param.kind == "bool":
            return st.booleans()
        if param.kind == "choice":
            return st.sampled_from(param.choices)
        ends = st.sampled_from([param.low, param.high])
        if param.kind == "int":
            return st.integers(int(param.low), int(param.high)) | ends
        return st.floats(param.low, param.high) | ends

    return st.fixed_dictionaries({name: strategy(PARAMS[name]) for name in head_defaults(loss)})


@pytest.mark.parametrize("loss", CLASSIC)
def test_loss_and_gradients_finite_at_weights_opposites_and_zero(loss: str) -> None:
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        params=_extreme_params(loss),
        dtype=st.sampled_from([torch.float32, F64]),
        scale=st.sampled_from([1.0, 1e-3, 1e3]),
    )
    def check(params: dict, dtype: torch.dtype, scale: float) -> None:
        torch.manual_seed(0)
        head = build_head(loss, 3, 4, **params).to(dtype)
        w = head.subcenter_weights()[:, 0]  # (C, d): a (sub-)centre of every class
        y = torch.tensor([0, 1, 2, 3, 0, 1])
        x = torch.cat([w[:2], -w[2:4], torch.zeros(2, 3, dtype=dtype)]) * scale
        x.requires_grad_()
        loss_value = head.compute_loss(x, y)
        loss_value.backward()
        assert torch.isfinite(loss_value), loss_value
        assert torch.isfinite(x.grad).all(), x.grad
        for parameter in head.parameters():
            assert torch.isfinite(parameter.grad).all()
        head.after_step(x, y)
        if head.centers is not None:
            assert torch.isfinite(head.centers).all()

    check()


def test_zero_features_get_no_push_through_their_angle() -> None:
    """A zero vector has no direction: cosine heads give it cos = 0 and a zero gradient."""
    head = build_head("arcface", 3, 4, s=64.0, m2=0.5)
    x = torch.zeros(2, 3, requires_grad=True)
    head.compute_loss(x, torch.tensor([0, 1])).backward()
    assert torch.equal(head.cosines(x.detach()), torch.zeros(2, 4))
    assert torch.equal(x.grad, torch.zeros(2, 3))


# ----- centre loss (Wen et al., ECCV 2016) -----------------------------------------------------
def test_center_update_is_the_papers_rule_by_hand() -> None:
    """c_j ← c_j − α Σ_i[y_i=j](c_j − x_i)/(1 + n_j), α = 0.5, worked out by hand:

    class 0: n = 2, Σ(c_0 − x_i) = (0−1 + 0−3, 0) = (−4, 0), Δ = (−4/3, 0), c_0 = (2/3, 0)
    class 1: n = 1, Σ = (1−1, 1−3) = (0, −2), Δ = (0, −1), c_1 = (1, 1) − 0.5·(0, −1) = (1, 1.5)
    class 2: n = 0, unchanged (2, 0)
    """
    head = build_head("center", 2, 3, center_lambda=0.1, center_alpha=0.5).double()
    head.centers.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]]))
    x = torch.tensor([[1.0, 0.0], [3.0, 0.0], [1.0, 3.0]], dtype=F64)
    y = torch.tensor([0, 0, 1])

    # the loss term first, with the centres before the update:
    # ½ · mean(‖(1,0)‖², ‖(3,0)‖², ‖(0,2)‖²) = ½ · 14/3 = 7/3, times λ = 0.1
    term = head.compute_loss(x, y) - F.cross_entropy(head(x, y), y)
    assert term.item() == pytest.approx(0.7 / 3, abs=1e-12)

    head.after_step(x, y)
    expected = torch.tensor([[2 / 3, 0.0], [1.0, 1.5], [2.0, 0.0]], dtype=F64)
    torch.testing.assert_close(head.centers, expected, atol=1e-12, rtol=0)


def test_center_term_gradient_and_buffer() -> None:
    """∂/∂x_i of λ·½·mean‖x − c‖² is λ (x_i − c_{y_i}) / B; centres are a buffer, not trained."""
    head = build_head("center", 2, 3, center_lambda=0.2).double()
    head.centers.normal_()
    x, y = _batch(2, 3, size=5)
    x.requires_grad_()
    (head.compute_loss(x, y) - F.cross_entropy(head(x, y), y)).backward()
    torch.testing.assert_close(x.grad, 0.2 * (x - head.centers[y]).detach() / 5)
    assert "centers" in head.state_dict()
    assert all(p is not head.centers for p in head.parameters())


def test_center_loss_on_any_head_switched_on_later() -> None:
    head = build_head("cosface", 2, 3)
    assert head.centers is None
    x, y = _batch(2, 3, size=6)
    x = x.float()
    plain = head.compute_loss(x, y)
    head.set_params(center_lambda=0.5)
    assert head.centers is not None and head.centers.shape == (3, 2)
    assert head.compute_loss(x, y) > plain  # centres start at zero: the term is positive
    head.after_step(x, y)
    # a saved head with centres loads into a fresh head whose centre loss is off
    fresh = build_head("cosface", 2, 3)
    fresh.load_state_dict(head.state_dict())
    torch.testing.assert_close(fresh.centers, head.centers)


# ----- sub-center ArcFace (Deng et al., ECCV 2020) ---------------------------------------------
def test_subcenter_cosine_is_the_max_over_subcentres() -> None:
    head = build_head("subcenter-arcface", 4, 5, k=3).double()
    x, y = _batch(4, 5, size=10)
    w = F.normalize(head.subcenter_weights(), dim=-1)  # (C, K, d)
    per_subcentre = torch.einsum("bd,ckd->bck", F.normalize(x, dim=1), w)
    torch.testing.assert_close(head.cosines(x), per_subcentre.amax(dim=2))
    assert head.subcenter_weights().shape == (5, 3, 4)


def test_subcenter_dominant_weight_follows_the_features() -> None:
    head = build_head("subcenter-arcface", 2, 2, k=3)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[[1.0, 0], [0, 1], [-1, 0]], [[0, -1], [1, 1], [-1, -1]]]))
    x = torch.tensor([[-1.0, 0.1], [-2.0, -0.1], [1.0, 1.2]])  # class 0 near its 3rd sub-centre
    y = torch.tensor([0, 0, 1])
    assert torch.equal(head.class_weights(), head.weight.detach()[:, 0])  # before any step
    head.after_step(x, y)
    torch.testing.assert_close(head.class_weights(), torch.tensor([[-1.0, 0], [1, 1]]))


# ----- the contract -------------------------------------------------------------------------------
@pytest.mark.parametrize("loss", CLASSIC)
def test_forward_is_plain_logits_with_the_margin_on_the_target(loss: str) -> None:
    head = build_head(loss, 3, 5).double()
    x, y = _batch(3, 5, size=12)
    logits, plain, margin = head(x, y), head.plain_logits(x), head.margin_logits(x)
    target = F.one_hot(y, 5).bool()
    assert logits.shape == plain.shape == margin.shape == head.cosines(x).shape == (12, 5)
    torch.testing.assert_close(logits[target], margin[target])
    torch.testing.assert_close(logits[~target], plain[~target])
    assert head.class_weights().shape == (5, 3)
    assert head.scale == (None if loss in ("softmax", "center", "sphereface") else 16.0)


def test_set_params_takes_effect_at_the_next_forward() -> None:
    head = build_head("arcface", 2, 3, s=10.0, m2=0.2).double()
    x, y = _batch(2, 3, size=4)
    cos_y = head.cosines(x)[torch.arange(4), y]
    before = head(x, y)[torch.arange(4), y]
    head.set_params(m2=0.4, s=20.0)
    after = head(x, y)[torch.arange(4), y]
    theta = torch.acos(cos_y)
    expected = torch.where(
        theta < math.pi - 0.4, torch.cos(theta + 0.4), cos_y - 0.4 * math.sin(0.4)
    )
    torch.testing.assert_close(after, 20.0 * expected)
    assert not torch.allclose(before, after)
    assert head.spec.m2 == 0.4 and head.scale == 20.0


def test_bad_set_params_changes_nothing() -> None:
    head = build_head("combined", 2, 3)
    before = head.params()
    for bad in ({"m2": 4.0}, {"s": -1.0}, {"policy": "maybe"}, {"k": 0}, {"warp": 1}):
        with pytest.raises(ValueError):
            head.set_params(m1=2.0, **bad)
        assert head.params() == before


def test_structural_params_are_fixed_after_building() -> None:
    head = build_head("subcenter-arcface", 2, 3, k=2)
    head.set_params(k=2, s=20.0)  # unchanged: fine
    with pytest.raises(ValueError, match="k is fixed"):
        head.set_params(k=3)
    with pytest.raises(ValueError, match="bias is fixed"):
        build_head("softmax", 2, 3).set_params(bias=True)


@pytest.mark.parametrize(
    ("loss", "params", "words"),
    [
        ("arcfcae", {}, "unknown loss"),
        ("arcface", {"margin": 0.5}, "unknown parameter"),
        ("arcface", {"s": 0.0}, "s"),
        ("arcface", {"s": float("nan")}, "s"),
        ("arcface", {"s": "big"}, "s"),
        ("arcface", {"m2": "0.5"}, "m2"),
        ("arcface", {"m2": 3.5}, "m2"),
        ("arcface", {"policy": "sometimes"}, "policy"),
        ("cosface", {"m2": -1.0}, "m2"),  # another loss's name: checked, then ignored
        ("sphereface", {"sphere_m": 2.5}, "sphere_m"),
        ("sphereface", {"lam": -1.0}, "lam"),
        ("sphereface", {"lambda_schedule": "yes"}, "lambda_schedule"),
        ("softmax", {"bias": 1}, "bias"),
        ("subcenter-arcface", {"k": 0}, "k"),
        ("center", {"center_lambda": -0.1}, "center_lambda"),
        ("center", {"center_alpha": 1.5}, "center_alpha"),
    ],
)
def test_build_head_errors_are_one_readable_line(loss: str, params: dict, words: str) -> None:
    with pytest.raises(ValueError) as error:
        build_head(loss, 2, 10, **params)
    message = str(error.value)
    assert words in message and "\n" not in message


@pytest.mark.parametrize(("dim", "classes"), [(0, 10), (2, 1), (2.5, 10), ("2", 10)])
def test_build_head_checks_its_sizes(dim, classes) -> None:
    with pytest.raises(ValueError):
        build_head("arcface", dim, classes)


def test_margin_names_of_other_losses_are_accepted_and_ignored() -> None:
    """One configuration builds every head of a comparison."""
    shared = {"s": 30.0, "m1": 1.35, "m2": 0.3, "m3": 0.1, "policy": "easy", "sphere_m": 3}
    for loss in HEAD_LOSSES:
        head = build_head(loss, 2, 4, **shared)
        assert set(head.params()) == set(HEAD_PARAMS[loss]) | {"center_lambda", "center_alpha"}
    assert build_head("cosface", 2, 4, **shared).spec.m2 == 0.0


@pytest.mark.parametrize("loss", CLASSIC)
def test_params_round_trip_through_json_and_build_head(loss: str) -> None:
    changed = {"s": 31.5, "m1": 1.7, "m2": 0.35, "m3": 0.15, "sphere_m": 3, "lam": 7.0}
    changed |= {"policy": "none", "bias": True, "lambda_schedule": False, "k": 2}
    changed |= {"center_lambda": 0.02, "center_alpha": 0.3}
    head = build_head(loss, 3, 7, **changed)
    params = json.loads(json.dumps(head.params()))
    twin = build_head(loss, 3, 7, **params)
    assert twin.params() == head.params() and twin.spec == head.spec
    assert {name: changed[name] for name in params} == params
    assert set(head_defaults(loss)) == set(params)


def test_defaults_are_sensible_and_margins_are_known() -> None:
    assert HEAD_LOSSES == LOSSES + ("center", "subcenter-arcface") + ADAPTIVE_LOSSES
    assert head_defaults("arcface")["s"] == 16.0
    assert head_defaults("center")["center_lambda"] == 0.01
    assert build_head("subcenter-arcface", 2, 3).spec.loss == "arcface"
    assert build_head("center", 2, 3).spec.loss == "softmax"
    assert build_head("softmax", 2, 3).bias is None  # the centre-loss toy's classifier


# ----- precision and devices ----------------------------------------------------------------------
@pytest.mark.parametrize("half", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("loss", ["arcface", "sphereface", "subcenter-arcface", "center"])
def test_autocast_keeps_the_margin_in_float32(loss: str, half: torch.dtype) -> None:
    head = build_head(loss, 8, 6)
    x, y = _batch(8, 6, size=16)
    x = x.float().requires_grad_()
    with torch.autocast("cpu", dtype=half):
        logits = head(x, y)
        loss_value = head.compute_loss(x, y)
    assert logits.dtype == torch.float32
    loss_value.backward()
    assert torch.isfinite(x.grad).all()
    torch.testing.assert_close(logits, head(x, y), atol=0.1, rtol=0.02)
    # the target column comes from the float32 row dot, not the half-precision matrix
    rows = torch.arange(16)
    torch.testing.assert_close(logits[rows, y], head(x, y)[rows, y], atol=1e-4, rtol=1e-5)


@pytest.mark.cuda  # skips without CUDA (conftest)
@pytest.mark.parametrize("loss", HEAD_LOSSES)
def test_cuda_matches_cpu_without_host_syncs(loss: str) -> None:
    head = build_head(loss, 8, 6, center_lambda=0.1).double()
    x, y = _batch(8, 6, size=16)
    expected = head.compute_loss(x, y)
    gpu = head.cuda()
    xg, yg = x.cuda().requires_grad_(), y.cuda()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        value = gpu.compute_loss(xg, yg)
        value.backward()
        gpu.after_step(xg, yg)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.testing.assert_close(value.cpu(), expected)
