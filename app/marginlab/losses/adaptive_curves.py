"""What the figures draw for the post-2020 losses, as plain arrays: curves of ψ over θ, the
margin as a function of the feature norm, and the names of the running state. Each value comes
from adaptive_margins.py (the one function per margin, DESIGN.md §3); figures/adaptive.py only
draws what is here, so no figure branches on a loss's name.

`state` is a head's `running_statistics()` (or a snapshot's copy of it): AdaFace's batch_mean
and batch_std, CurricularFace's t, AdaCos's running_s. Missing entries take their starting
values, which is what a fresh head has.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from marginlab.losses import adaptive_margins as am
from marginlab.losses.registry import loss_spec
from marginlab.params import PARAMS

# The running state each loss carries, with the label a metric strip or a plot gives it.
STATE_LABELS: dict[str, dict[str, str]] = {
    "adaface": {"batch_mean": "AdaFace μ (mean ‖x‖)", "batch_std": "AdaFace σ (std ‖x‖)"},
    "curricularface": {"t": "CurricularFace t"},
    "adacos": {"running_s": "AdaCos s"},
}
# What a reader should know when looking at a loss's curves (a figure appends it to its caption).
CURVE_NOTES: dict[str, str] = {
    "adaface": "Which curve a sample gets depends on its norm relative to the running μ and σ.",
    "magface": "Which curve a sample gets depends on its magnitude a = clamp(‖x‖, l_a, u_a).",
    "elasticface-arc": "Each training sample draws its own margin; dotted: one σ either side.",
    "elasticface-cos": "Each training sample draws its own margin; dotted: one σ either side.",
    "curricularface": "c·(t + c) is smallest at c = −t/2: below that a hard negative's logit "
    "falls as c_j RISES, so its gradient pulls the feature towards that class. In 512-D "
    "negatives sit near c = 0; in 2-D and 3-D they reach it.",
    "adacos": "No margin: only the scale s changes, from batch to batch.",
}
STATE_STARTS = {
    "batch_mean": am.ADAFACE_INITIAL_MEAN,
    "batch_std": am.ADAFACE_INITIAL_STD,
    "t": 0.0,
}


# The losses whose margin depends on the feature norm: their bands on the circle and sphere
# are drawn at one norm (figures say which), in the raw plane at each point's own.
NORM_DEPENDENT: tuple[str, ...] = ("adaface", "magface")


@dataclass(frozen=True)
class Curve:
    """One curve. role: "target" (the loss's ψ), "negative" (a non-target logit), "halo" (the
    edges of a spread of targets, drawn pale), "reference" (plain cos θ)."""

    label: str
    y: np.ndarray
    role: str


def _t(values: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float64))


def _state(state: Mapping[str, float] | None, name: str) -> float:
    return float((state or {}).get(name, STATE_STARTS.get(name, 0.0)))


def target_curves(
    loss: str, params: Mapping[str, Any], cos: np.ndarray, state: Mapping[str, float] | None = None
) -> list[Curve]:
    """The loss's unscaled logits over `cos` (= cos θ): its target curve(s), and where the loss
    changes a non-target logit (CurricularFace) that curve too."""
    c = _t(cos)
    reference = Curve("cos θ (no margin)", np.asarray(cos, dtype=np.float64), "reference")
    if loss == "adaface":
        m = params["m"]
        rows = [(-1.0, "low norm (ẑ = −1): ArcFace-like"), (0.0, "mean norm (ẑ = 0): CosFace-like")]
        rows.append((1.0, "high norm (ẑ = +1)"))
        curves = [Curve(label, am.adaface_target(c, z, m=m).numpy(), "target") for z, label in rows]
        return [reference, *curves]
    if loss == "magface":
        low, high = params["l_a"], params["u_a"]
        curves = []
        for a, word in ((low, "a = l_a"), ((low + high) / 2, "a halfway"), (high, "a = u_a")):
            margin = am.magface_margin(a, l_a=low, u_a=high, l_m=params["l_m"], u_m=params["u_m"])
            psi = am.angular_margin(c, margin, policy=params["policy"]).numpy()
            curves.append(Curve(f"{word}: m = {float(margin):.3g} rad", psi, "target"))
        return [reference, *curves]
    if loss in ("elasticface-arc", "elasticface-cos"):
        kind, name = ("arc", "m2") if loss == "elasticface-arc" else ("cos", "m3")
        mean, sigma = params[name], params["sigma"]
        curves = [
            Curve(
                f"mean margin m = {mean:g}", am.elastic_target(c, mean, kind=kind).numpy(), "target"
            )
        ]
        for edge, sign in ((mean - sigma, "−"), (mean + sigma, "+")):
            psi = am.elastic_target(c, _t(edge), kind=kind).numpy()
            curves.append(Curve(f"m {sign} σ = {edge:.3g}", psi, "halo"))
        return [reference, *curves]
    if loss == "curricularface":
        t = _state(state, "t")
        target = am.curricular_target(c, m=params["m2"]).numpy()
        negative = am.curricular_negative(c, t).numpy()
        return [
            reference,
            Curve(f"target: ArcFace, m = {params['m2']:g} rad", target, "target"),
            Curve(f"hard negative c·(t + c), t = {t:.3f}", negative, "negative"),
        ]
    if loss == "adacos":
        return [reference]
    raise ValueError(f"no curves for loss {loss!r}")


# The one curve a plot of many losses shows for each (Compare, the Lab's target-logit panel).
_REFERENCE = {"adaface": "mean norm", "magface": "a halfway", "elasticface-arc": "mean margin",
              "elasticface-cos": "mean margin", "curricularface": "target",
              "adacos": "cos θ"}  # fmt: skip


def reference_target(loss: str, values: Mapping[str, Any], cos: np.ndarray) -> np.ndarray:
    """The loss's target logit over `cos` at its reference: AdaFace at the mean norm (ẑ = 0),
    MagFace at the middle magnitude, ElasticFace at its mean margin, CurricularFace's target
    (ArcFace with the fallback), AdaCos's plain cos θ. `values` are the head's values and
    running state; missing ones take the loss's 2-D defaults."""
    params = {**loss_spec(loss).defaults(2), **values}
    curves = target_curves(loss, params, cos, values)
    return next(c.y for c in curves if c.label.startswith(_REFERENCE[loss]))


def spread_edge(loss: str, values: Mapping[str, Any]) -> dict[str, Any] | None:
    """The values at the wide edge of a loss's random margin spread, mean + σ (ElasticFace),
    kept inside the parameter table; None for the losses without one."""
    name = {"elasticface-arc": "m2", "elasticface-cos": "m3"}.get(loss)
    if name is None or not values.get("sigma", 0.0) > 0:
        return None
    edge = min(float(values.get(name, 0.0)) + float(values["sigma"]), PARAMS[name].high)
    return {**values, name: edge}


def norm_margin_curves(
    loss: str,
    params: Mapping[str, Any],
    norms: np.ndarray,
    state: Mapping[str, float] | None = None,
) -> list[Curve]:
    """The margin as a function of ‖x‖ over `norms`, for the losses whose margin depends on it;
    an empty list for the others. AdaFace has two margins: g_angle = −m·ẑ is added to θ (rad),
    g_add = m + m·ẑ is subtracted from the cosine; MagFace's m(a) is added to θ (rad)."""
    r = _t(norms)
    if loss == "adaface":
        clipped = r.clamp(*am.ADAFACE_NORM_RANGE)
        mean, std = _state(state, "batch_mean"), _state(state, "batch_std")
        z = am.adaface_scaler(clipped, batch_mean=mean, batch_std=std, h=params["h"])
        angle, additive = am.adaface_margins(z, m=params["m"])
        return [
            Curve("g_angle = −m·ẑ (added to θ, rad)", angle.numpy(), "target"),
            Curve("g_add = m + m·ẑ (subtracted from cos θ)", additive.numpy(), "negative"),
        ]
    if loss == "magface":
        low, high = params["l_a"], params["u_a"]
        a = am.magface_magnitudes(r, l_a=low, u_a=high)
        margin = am.magface_margin(a, l_a=low, u_a=high, l_m=params["l_m"], u_m=params["u_m"])
        return [Curve("m(a), a = clamp(‖x‖, l_a, u_a) (added to θ, rad)", margin.numpy(), "target")]
    return []


def norm_range(loss: str, params: Mapping[str, Any], state: Mapping[str, float] | None) -> float:
    """A ‖x‖ axis end that shows where the margin changes: past u_a for MagFace, past the
    norm where ẑ reaches +1 for AdaFace; 0 for the losses without a norm-dependent margin."""
    if loss == "magface":
        return 1.25 * params["u_a"]
    if loss == "adaface":
        mean, std = _state(state, "batch_mean"), _state(state, "batch_std")
        return mean + 1.25 * (std + am.ADAFACE_EPS) / params["h"]
    return 0.0
