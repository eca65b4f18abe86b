"""Formulas: the current loss in LaTeX with its numbers, and the pictures the formula makes."""

import streamlit as st

from marginlab.figures import binary_boundary_figure, target_logit_figure, target_probability_figure
from marginlab.figures.style import margin_of
from marginlab.lab_state import run_config
from marginlab.losses.formulas import loss_formula
from ui.controls import LOSS_NAMES, margin_controls
from ui.live_plot import live_plotly
from ui.state import page_setup

config = page_setup("formulas")
params = run_config(config).to_dict()

with st.sidebar:
    st.subheader(LOSS_NAMES[config.loss])
    margin_controls(config, params)

formula = loss_formula(config.loss, params)
st.title(f"Formulas · {formula.name}")
st.caption(f"From: {formula.paper}. Change the loss on the Lab page; the sliders are shared.")
st.latex(formula.general)
st.latex(formula.substituted)
if formula.note:
    st.info(formula.note)

curve = {"loss": config.loss, **params, "label": LOSS_NAMES[config.loss]}
left, right = st.columns(2)
with left:
    live_plotly(target_logit_figure(curve), key="formula_curve")
with right:
    probability = target_probability_figure(config.loss, params["s"], **margin_of(params))
    live_plotly(probability, key="formula_probability")
# Five square panels in a row need the page's whole width to stay readable.
live_plotly(binary_boundary_figure(), key="formula_boundaries")
