"""AdaFace, MagFace, ElasticFace, CurricularFace and AdaCos against references written here from
the papers' formulas (issue 15), in plain float64 torch, independent of adaptive_margins.py:
values and gradients in 2-D, 3-D and 512-D, the σ = 0 equalities, finiteness over the whole
parameter range, the running statistics across steps, eval mode and a save/load round trip."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marginlab.data.batches import to_device
from marginlab.data.datasets import load_dataset
from marginlab.losses.heads import build_head
from marginlab.losses.margins import POLICIES
from marginlab.losses.registry import ADAPTIVE_LOSSES, loss_spec
from marginlab.params import PARAMS
from marginlab.training import evaluation  # not its function: pytest would collect test_*
from marginlab.training.backbones import build_backbone

F64 = torch.float64
EPS = 1e-7
pytestmark = pytest.mark.usefixtures("one_thread")


def _batch(dim: int, classes: int, size: int = 33, seed: int = 0, scale: float = 3.0):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(size, dim, generator=generator, dtype=F64) * scale
    labels = torch.randint(0, classes, (size,), generator=generator)
    return features, labels


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True)


def _cos(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return _unit(x) @ _unit(w).T


def _one_hot(labels: torch.Tensor, classes: int) -> torch.Tensor:
    return F.one_hot(labels, classes).to(F64)


# ----- references, written from the formulas in the issue ------------------------------------
def ref_adaface(x, w, y, *, s, m, h, mean, std):
    """Logits with the statistics given (already updated for this batch)."""
    cos = _cos(x, w)
    norms = x.detach().norm(dim=1).clamp(0.001, 100)
    z = (h * (norms - mean) / (std + 0.001)).clamp(-1, 1)
    hot = _one_hot(y, w.shape[0])
    theta = torch.acos(cos.clamp(-1 + EPS, 1 - EPS))
    target = torch.cos((theta - m * z[:, None]).clamp(0.001, math.pi - 0.001)) - (
        m + m * z[:, None]
    )
    return s * (hot * target + (1 - hot) * cos)


def ref_adaface_stats(x, mean, std, t_alpha):
    norms = x.detach().norm(dim=1).clamp(0.001, 100)
    return (
        t_alpha * norms.mean() + (1 - t_alpha) * mean,
        t_alpha * norms.std(unbiased=True) + (1 - t_alpha) * std,
    )


def ref_magface(x, w, y, *, s, l_a, u_a, l_m, u_m, lambda_g, policy):
    """(logits, loss) as the official MagLinear + MagLoss."""
    cos = _cos(x, w)
    a = x.norm(dim=1, keepdim=True).clamp(l_a, u_a)
    margin = (u_m - l_m) / (u_a - l_a) * (a - l_a) + l_m
    theta = torch.acos(cos.clamp(-1 + EPS, 1 - EPS))
    shifted = torch.cos(theta + margin)
    if policy == "easy":
        shifted = torch.where(cos > 0, shifted, cos)
    elif policy == "fallback":
        threshold = torch.cos(math.pi - margin)
        shifted = torch.where(cos > threshold, shifted, cos - torch.sin(math.pi - margin) * margin)
    hot = _one_hot(y, w.shape[0])
    logits = s * (hot * shifted + (1 - hot) * cos)
    regulariser = (a / u_a**2 + 1 / a).mean()
    return logits, F.cross_entropy(logits, y) + lambda_g * regulariser


def ref_elastic(x, w, y, margins, *, s, kind):
    cos = _cos(x, w)
    hot = _one_hot(y, w.shape[0])
    if kind == "arc":
        theta = torch.acos(cos.clamp(-1 + EPS, 1 - EPS))
        target = torch.cos(theta + margins[:, None])
    else:
        target = cos - margins[:, None]
    return s * (hot * target + (1 - hot) * cos)


def ref_curricular(x, w, y, *, s, m, t):
    """Logits with t already updated for this batch."""
    cos = _cos(x, w)
    cos_y = cos.gather(1, y[:, None])
    theta_y = torch.acos(cos_y.clamp(-1 + EPS, 1 - EPS))
    raw = torch.cos(theta_y + m)
    target = torch.where(theta_y <= math.pi - m, raw, cos_y - m * math.sin(m))
    hard = (cos > raw.detach()).to(F64)
    negatives = hard * cos * (t + cos) + (1 - hard) * cos
    hot = _one_hot(y, w.shape[0])
    return s * (hot * target + (1 - hot) * negatives)


def ref_adacos_s(x, w, y, s):
    cos = _cos(x, w).detach()
    hot = _one_hot(y, w.shape[0])
    b_avg = ((1 - hot) * torch.exp(s * cos)).sum() / x.shape[0]
    theta_y = torch.acos(cos.gather(1, y[:, None]).clamp(-1 + EPS, 1 - EPS))
    theta_med = theta_y.flatten().sort().values[x.shape[0] // 2]  # odd batches: the median
    return float(torch.log(b_avg) / math.cos(min(math.pi / 4, float(theta_med))))


def _grads(loss_fn, x, w):
    x = x.clone().requires_grad_()
    w = w.clone().requires_grad_()
    loss = loss_fn(x, w)
    loss.backward()
    return loss.detach(), x.grad, w.grad


def _head(loss: str, dim: int, classes: int, **params):
    torch.manual_seed(1)
    return build_head(loss, dim, classes, **params).to(F64)


def _compare(head, y, x, reference_loss, *, atol=1e-10):
    """Head's loss and gradients (wrt features and weights) against the reference's."""
    xh = x.clone().requires_grad_()
    head.zero_grad()
    loss = head.compute_loss(xh, y)
    loss.backward()
    ref, ref_dx, ref_dw = _grads(reference_loss, x, head.weight.detach())
    torch.testing.assert_close(loss.detach(), ref, atol=atol, rtol=0)
    torch.testing.assert_close(xh.grad, ref_dx, atol=atol, rtol=1e-9)
    torch.testing.assert_close(head.weight.grad, ref_dw, atol=atol, rtol=1e-9)


DIMS = (2, 3, 512)


# ----- values and gradients ------------------------------------------------------------------
@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize(
    "params", [{"s": 16.0, "m": 0.2, "h": 0.333}, loss_spec("adaface").paper_preset]
)
def test_adaface_matches_the_reference(dim: int, params: dict) -> None:
    params = {**params, "t_alpha": 0.3}  # a visible update of the statistics
    head = _head("adaface", dim, 10, **params)
    x, y = _batch(dim, 10, scale=20.0)
    mean, std = ref_adaface_stats(
        x, torch.tensor(20.0, dtype=F64), torch.tensor(100.0, dtype=F64), 0.3
    )
    kw = {k: params[k] for k in ("s", "m", "h")}

    def reference(xr, wr):
        return F.cross_entropy(ref_adaface(xr, wr, y, mean=mean, std=std, **kw), y)

    _compare(head, y, x, reference)
    # One training forward updated the statistics once, before they were used.
    assert float(head.batch_mean) == pytest.approx(float(mean), abs=1e-12)
    assert float(head.batch_std) == pytest.approx(float(std), abs=1e-12)


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("policy", POLICIES)
def test_magface_matches_the_reference(dim: int, policy: str) -> None:
    params = {"s": 32.0, "l_a": 2.0, "u_a": 30.0, "l_m": 0.3, "u_m": 0.9, "lambda_g": 5.0}
    head = _head("magface", dim, 10, policy=policy, **params)
    x, y = _batch(dim, 10, scale=10.0)
    x[0] = x[0] / x[0].norm() * 0.5  # below l_a: the margin and g stop at l_a
    x[1] = x[1] / x[1].norm() * 80.0  # above u_a
    x[2] = -head.weight.detach()[y[2]]  # past π − m: the policies differ

    def reference(xr, wr):
        return ref_magface(xr, wr, y, policy=policy, **params)[1]

    _compare(head, y, x, reference)
    assert head.running_statistics() == {}


def test_magface_paper_preset_matches_the_reference_in_512d() -> None:
    preset = loss_spec("magface").paper_preset
    head = _head("magface", 512, 10, **preset)
    x, y = _batch(512, 10, scale=2.5)  # ‖x‖ ≈ 57: inside [10, 110]
    params = {k: v for k, v in preset.items()}

    def reference(xr, wr):
        return ref_magface(xr, wr, y, **params)[1]

    _compare(head, y, x, reference)


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("loss", ["elasticface-arc", "elasticface-cos"])
def test_elasticface_matches_the_reference_with_the_runs_generator(dim: int, loss: str) -> None:
    name = "m2" if loss == "elasticface-arc" else "m3"
    head = _head(loss, dim, 10, s=20.0, sigma=0.1, **{name: 0.3})
    head.generator = torch.Generator().manual_seed(7)
    x, y = _batch(dim, 10)
    margins = 0.3 + 0.1 * torch.randn(len(y), generator=torch.Generator().manual_seed(7), dtype=F64)

    def reference(xr, wr):
        return F.cross_entropy(ref_elastic(xr, wr, y, margins, s=20.0, kind=loss[12:]), y)

    _compare(head, y, x, reference)


def test_elasticface_margins_follow_their_normal_distribution() -> None:
    """Recovered from the logits themselves: z_y = s·(c_y − margin) for the Cos variant."""
    head = _head("elasticface-cos", 3, 10, s=10.0, m3=0.3, sigma=0.05)
    head.generator = torch.Generator().manual_seed(0)
    x, y = _batch(3, 10, size=20000)
    logits = head(x, y).detach()
    margins = (
        _cos(x, head.weight.detach()).gather(1, y[:, None])[:, 0]
        - logits.gather(1, y[:, None])[:, 0] / 10
    )
    assert float(margins.mean()) == pytest.approx(0.3, abs=0.002)
    assert float(margins.std()) == pytest.approx(0.05, abs=0.002)
    head.eval()  # eval mode: the mean margin, and nothing drawn
    state = head.generator.get_state()
    eval_margins = (
        _cos(x, head.weight.detach()).gather(1, y[:, None])[:, 0]
        - head(x, y).gather(1, y[:, None])[:, 0] / 10
    )
    torch.testing.assert_close(eval_margins, torch.full_like(eval_margins, 0.3))
    assert torch.equal(head.generator.get_state(), state)


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("m", [0.2, 0.5])
def test_curricularface_matches_the_reference(dim: int, m: float) -> None:
    head = _head("curricularface", dim, 10, s=16.0, m2=m)
    head.t.fill_(0.4)  # as after some training: hard negatives are re-weighted visibly
    x, y = _batch(dim, 10)
    w = head.weight.detach()
    x[:3] = w[(y[:3] + 1) % 10]  # the feature on another class: that class is a hard negative
    x[3] = -w[y[3]]  # past π − m: the fallback
    cos_y = _cos(x, w).gather(1, y[:, None])
    t = 0.01 * float(cos_y.mean()) + 0.99 * 0.4

    def reference(xr, wr):
        return F.cross_entropy(ref_curricular(xr, wr, y, s=16.0, m=m, t=t), y)

    _compare(head, y, x, reference)
    assert float(head.t) == pytest.approx(t, abs=1e-12)


@pytest.mark.parametrize("dim", DIMS)
def test_adacos_matches_the_reference(dim: int) -> None:
    head = _head("adacos", dim, 10)
    assert float(head.running_s) == pytest.approx(math.sqrt(2) * math.log(9))
    s0 = float(head.running_s)  # a float32 buffer, like every buffer the module starts with
    x, y = _batch(dim, 10)
    s1 = ref_adacos_s(x, head.weight.detach(), y, s0)

    def reference(xr, wr):
        return F.cross_entropy(s1 * _cos(xr, wr), y)

    _compare(head, y, x, reference)
    assert float(head.running_s) == pytest.approx(s1, abs=1e-10)


# ----- σ = 0 is ArcFace / CosFace, bit for bit ----------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize(
    ("loss", "parent", "params"),
    [
        ("elasticface-arc", "arcface", {"m2": 0.35, "policy": "none"}),
        ("elasticface-cos", "cosface", {"m3": 0.15}),
    ],
)
def test_elasticface_with_zero_sigma_is_its_parent_exactly(loss, parent, params, dtype) -> None:
    torch.manual_seed(3)
    elastic = build_head(loss, 3, 10, s=24.0, sigma=0.0, **params).to(dtype)
    parent = build_head(parent, 3, 10, s=24.0, **params).to(dtype)
    parent.load_state_dict({"weight": elastic.weight.detach().clone()})
    x, y = _batch(3, 10)
    x = x.to(dtype)
    x[0] = -elastic.weight.detach()[y[0]]  # past π − m, where the policies part
    grads = []
    for head in (elastic, parent):
        xh = x.clone().requires_grad_()
        logits = head(xh, y)
        F.cross_entropy(logits, y).backward()
        grads.append((logits.detach(), xh.grad, head.weight.grad))
    for mine, theirs in zip(*grads, strict=True):
        assert torch.equal(mine, theirs)
    assert torch.equal(elastic.margin_logits(x), parent.margin_logits(x))


def test_adaface_at_the_mean_norm_is_cosface_and_at_low_norm_arcface() -> None:
    """ẑ = 0 gives cos θ − m; ẑ = −1 gives cos(θ + m) (the angle stays inside the clip)."""
    head = _head("adaface", 2, 10, s=10.0, m=0.3, h=1.0)
    head.eval()
    x, y = _batch(2, 10)
    x = _unit(x) * 20.0  # the starting batch_mean
    cos = _cos(x, head.weight.detach())
    theta = torch.acos(cos.clamp(-1 + EPS, 1 - EPS))
    clipped = torch.cos(theta.clamp(0.001, math.pi - 0.001))  # AdaFace clips every target angle
    torch.testing.assert_close(head.margin_logits(x), 10.0 * (clipped - 0.3))
    head.batch_std.fill_(5.0)
    low = _unit(x) * 10.0  # (10 − 20)/5 = −2 → ẑ clipped to −1
    expected = torch.cos((theta + 0.3).clamp(max=math.pi - 0.001))
    torch.testing.assert_close(head.margin_logits(low), 10.0 * expected)


# ----- finite over the whole range (hypothesis) ----------------------------------------------
def _table(name: str, low: float | None = None, high: float | None = None):
    """Floats over the one parameter table's range of `name` (or a part of it)."""
    param = PARAMS[name]
    return st.floats(param.low if low is None else low, param.high if high is None else high)


# Every value a slider, URL or CLI flag can give; MagFace's pairs drawn in order (u_a > l_a).
RANGES = {
    **{name: _table(name) for name in ("s", "m", "h", "t_alpha", "lambda_g", "m2", "m3")},
    **{name: _table(name) for name in ("sigma", "center_lambda", "center_alpha")},
    "l_a": _table("l_a", high=150.0),
    "u_a": _table("u_a", low=150.5),
    "l_m": _table("l_m", high=0.75),
    "u_m": _table("u_m", low=0.75),
    "policy": st.sampled_from(POLICIES),
}


@pytest.mark.parametrize("loss", ADAPTIVE_LOSSES)
def test_loss_gradients_and_state_finite_at_the_worst_places(loss: str) -> None:
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        params=st.fixed_dictionaries({name: RANGES[name] for name in loss_spec(loss).defaults(2)}),
        dtype=st.sampled_from([torch.float32, F64]),
        scale=st.sampled_from([1.0, 1e-3, 1e3]),
    )
    def check(params: dict, dtype: torch.dtype, scale: float) -> None:
        torch.manual_seed(0)
        head = build_head(loss, 3, 4, **params).to(dtype)
        w = head.weight.detach()
        y = torch.tensor([0, 1, 2, 3, 0, 1])
        # On its weight, on the opposite of its weight, on another class, and zero.
        x = torch.cat([w[:2], -w[2:4], w[1:2], torch.zeros(1, 3, dtype=dtype)]) * scale
        for _ in range(3):  # the running state moves, and stays finite
            xh = x.clone().requires_grad_()
            head.zero_grad()
            value = head.compute_loss(xh, y)
            value.backward()
            assert torch.isfinite(value), value
            assert torch.isfinite(xh.grad).all(), xh.grad
            assert torch.isfinite(head.weight.grad).all()
            head.after_step(xh.detach(), y)
        assert all(math.isfinite(v) for v in head.running_statistics().values())
        assert torch.isfinite(head.margin_logits(x)).all()

    check()


# ----- running statistics, eval mode, save and load ------------------------------------------
def test_running_statistics_follow_their_recursions_across_steps() -> None:
    ada = _head("adaface", 2, 10, t_alpha=0.05)
    cur = _head("curricularface", 2, 10)
    cos_ = _head("adacos", 2, 10)
    mean, std = torch.tensor(20.0, dtype=F64), torch.tensor(100.0, dtype=F64)
    t, s = 0.0, float(cos_.running_s)
    for step in range(5):
        x, y = _batch(2, 10, seed=step, scale=4.0 + step)
        mean, std = ref_adaface_stats(x, mean, std, 0.05)
        cos_y = _cos(x, cur.weight.detach()).gather(1, y[:, None])
        t = 0.01 * float(cos_y.mean()) + 0.99 * t
        s = ref_adacos_s(x, cos_.weight.detach(), y, s)
        for head in (ada, cur, cos_):
            head.compute_loss(x, y).backward()
    assert ada.running_statistics() == pytest.approx(
        {"batch_mean": float(mean), "batch_std": float(std)}
    )
    assert cur.running_statistics() == pytest.approx({"t": t})
    assert cos_.running_statistics() == pytest.approx({"running_s": s})


@pytest.mark.parametrize("loss", ADAPTIVE_LOSSES)
def test_eval_mode_reads_the_state_without_updating_it(loss: str) -> None:
    head = _head(loss, 3, 10)
    x, y = _batch(3, 10)
    head.compute_loss(x, y)  # one training forward: the state is not at its start any more
    before = {k: v.clone() for k, v in head.state_dict().items() if isinstance(v, torch.Tensor)}
    head.eval()
    first = head(x, y)
    head.compute_loss(x, y)
    torch.testing.assert_close(head(x, y), first, rtol=0, atol=0)
    for name, value in head.state_dict().items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, before[name]), name


@pytest.mark.parametrize("loss", ADAPTIVE_LOSSES)
def test_save_and_load_keep_the_running_state(loss: str) -> None:
    head = _head(loss, 3, 10)
    head.generator = torch.Generator().manual_seed(5) if loss.startswith("elastic") else None
    for step in range(3):
        x, y = _batch(3, 10, seed=step)
        head.compute_loss(x, y)
    buffer = io.BytesIO()
    torch.save(head.state_dict(), buffer)
    buffer.seek(0)
    twin = _head(loss, 3, 10)
    twin.load_state_dict(torch.load(buffer, weights_only=True))
    assert twin.running_statistics() == head.running_statistics()
    x, y = _batch(3, 10, seed=9)
    # The next training step is the same, ElasticFace's draws included.
    torch.testing.assert_close(twin(x, y), head(x, y), rtol=0, atol=0)
    assert twin.running_statistics() == head.running_statistics()


# ----- parameters ----------------------------------------------------------------------------
def test_bad_parameters_get_one_line_messages() -> None:
    cases = [
        ("magface", {"l_a": 20.0, "u_a": 10.0}, "u_a must exceed l_a"),
        ("magface", {"policy": "sideways"}, "unknown policy"),
        (
            "elasticface-arc",
            {"sigma": -0.1},
            r"^sigma, σ \(margin spread\), must lie in \[0, 0.5\]",
        ),
        ("adaface", {"t_alpha": 1.5}, r"t_alpha \(.*\) must lie in"),
        ("adaface", {"h": 0.0}, r"h \(.*\) must lie in"),
        ("adaface", {"m": float("nan")}, "m must be a finite number"),
        ("curricularface", {"m2": 4.0}, "m2"),
        ("adacos", {"wobble": 1.0}, "unknown parameter 'wobble'"),
    ]
    for loss, params, message in cases:
        with pytest.raises(ValueError, match=message) as error:
            build_head(loss, 2, 10, **params)
        assert "\n" not in str(error.value)


def test_a_head_takes_and_ignores_the_names_other_losses_use() -> None:
    shared = {"s": 20.0, "m": 0.3, "m1": 1.2, "m2": 0.25, "m3": 0.1, "sigma": 0.02, "l_a": 1.0}
    for loss in ADAPTIVE_LOSSES:
        head = build_head(loss, 2, 10, **shared)
        assert set(head.params()) == set(loss_spec(loss).defaults(2))
    head = build_head("elasticface-arc", 2, 10, **shared)
    assert head.params()["m2"] == 0.25 and head.params()["sigma"] == 0.02
    head.set_params(sigma=0.0, k=3)
    assert head.params()["sigma"] == 0.0


@pytest.mark.parametrize("loss", ["adaface", "curricularface", "adacos", "elasticface-arc"])
def test_whole_test_set_metrics_leave_the_running_state_alone(loss: str) -> None:
    """Real digits, a real backbone: evaluating must not learn statistics from test images."""
    data = to_device(load_dataset("mnist-toy"), torch.device("cpu"), probe_size=50)
    torch.manual_seed(0)
    backbone = build_backbone(data.image_shape, 2)
    head = build_head(loss, 2, data.num_classes)
    head.generator = torch.Generator().manual_seed(0)
    x = backbone(data.train_images[:64])
    head.compute_loss(x, data.train_labels[:64])  # a training forward: the state moves
    before = {k: v.clone() for k, v in head.state_dict().items() if isinstance(v, torch.Tensor)}
    draws = head.generator.get_state()
    metrics = evaluation.test_set_metrics(backbone, head, data, 2)
    assert 0 <= metrics["test_acc"] <= 1 and math.isfinite(metrics["test_loss"])
    assert head.training  # put back as it was
    for name, value in head.state_dict().items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, before[name]), name
    assert torch.equal(head.generator.get_state(), draws)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("loss", ADAPTIVE_LOSSES)
def test_leads_say_exactly_where_the_target_wins_its_own_forward(loss: str, dim: int) -> None:
    """The figures' regions come from `leads`: class y owns x with margin iff, in the head's own
    eval-mode forward with label y, the target logit beats every other logit."""
    head = _head(loss, dim, 10)
    if loss == "curricularface":
        head.t.fill_(0.6)  # hard rivals visibly re-weighted
    head.load_running_statistics({"batch_mean": 3.0, "batch_std": 1.5} if loss == "adaface" else {})
    x, _ = _batch(dim, 10, size=400, seed=4, scale=3.0)
    head.eval()
    leads = head.leads(x)
    for target in range(10):
        y = torch.full((len(x),), target)
        logits = head(x, y)
        rival = logits.masked_fill(F.one_hot(y, 10).bool(), -math.inf).amax(dim=1)
        wins = logits[:, target] > rival
        assert torch.equal(wins, leads[:, target] > 0), (loss, target)
    owned = (leads > 0).any(dim=1)
    assert 0 < int(owned.sum()) < len(x) or loss == "adacos"  # bands exist, and regions too


def test_running_statistics_load_back() -> None:
    head = _head("adaface", 2, 10)
    head.load_running_statistics({"batch_mean": 2.5, "batch_std": 0.75})
    assert head.running_statistics() == {"batch_mean": 2.5, "batch_std": 0.75}
    with pytest.raises(ValueError, match="no running statistic 't'"):
        head.load_running_statistics({"t": 0.1})


def test_cli_trains_saves_and_reloads_the_running_state(tmp_path, capsys) -> None:
    """`train --loss adacos --json --save`, then `eval --load`: the JSON carries the head's
    running s, and the reloaded run reports the same one."""
    import json

    from marginlab.cli import main

    path = tmp_path / "adacos.pt"
    fast = ["--dim", "2", "--steps", "8", "--device", "cpu", "--threads", "1", "--json"]
    assert main(["train", "--loss", "adacos", *fast, "--save", str(path)]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["config"]["loss"] == "adacos" and trained["state"]["running_s"] > 0
    assert main(["eval", "--load", str(path), "--json"]) == 0
    loaded = json.loads(capsys.readouterr().out)
    assert loaded["state"] == trained["state"]
    assert main(["train", "--loss", "adaface", "--m", "3", *fast]) == 2  # outside the table
