"""Faces: identities on the circle/sphere (closed set) and verification of unseen people."""

import functools

import pandas as pd
import streamlit as st

from marginlab.data.datasets import DatasetUnavailable
from marginlab.experiments.angle_report import table3_sets
from marginlab.experiments.faces import (
    CLOSED_SET_PEOPLE,
    FACE_LOSSES,
    OPEN_SET_DIM,
    OPEN_SET_FINDINGS,
    OPEN_SET_STEPS,
    closed_set_comparison,
    closed_set_config,
    olivetti_faces,
    open_set_config,
    open_set_experiment,
)
from marginlab.figures.verification import pair_angle_panels, roc_figure
from ui.controls import LOSS_NAMES
from ui.limits import limited
from ui.live import LiveTraining
from ui.live_page import live_page
from ui.live_plot import live_plotly
from ui.panels import metrics_table, show_figures
from ui.state import page_setup
from ui.table3 import definitions_caption, table3_frame

CREDIT = "Olivetti faces: AT&T Laboratories Cambridge (formerly Olivetti Research Laboratory)."

config = page_setup("faces")
st.title("Faces: identities on the sphere")
try:
    people = olivetti_faces()
except DatasetUnavailable as error:
    st.warning(f"{error}.", icon=":material/cloud_off:")
    st.write("Everything else in the lab works offline on the shipped MNIST digits.")
    if st.button("Train on MNIST in the Lab instead", icon=":material/arrow_forward:"):
        st.switch_page("views/lab.py")
    st.stop()
st.caption(f"{CREDIT} 40 people, 10 images each, shown at 32×32.")
closed_tab, open_tab = st.tabs(["Closed set: K people", "Open set: people never seen"])


@st.cache_resource(max_entries=4, show_spinner=False)
def closed_setup(losses: tuple[str, ...], k: int, dim: int, seed: int):
    # Read-only data shared by sessions; each session builds its own models from it.
    return closed_set_config(losses, k=k, dim=dim, seed=seed)


with closed_tab:
    st.markdown(
        "As in the ArcFace paper's toy (Deng et al., CVPR 2019): a few identities with 2-D or "
        "3-D features, 8 training images each, lightly augmented (flips, small shifts)."
    )
    left, middle, right = st.columns(3)
    k = left.slider("people", 2, 20, CLOSED_SET_PEOPLE, step=1, key="faces_k")
    dim = middle.radio("dimension", [2, 3], horizontal=True, key="faces_dim")
    losses = right.multiselect(
        "losses",
        list(FACE_LOSSES),
        default=["softmax", "arcface"],
        format_func=LOSS_NAMES.get,
        max_selections=6,
        key="faces_losses",
    )
    if losses:
        setup = closed_setup(tuple(losses), k, dim, config.seed)

        recipe = functools.partial(
            closed_set_comparison, tuple(losses), k=k, dim=dim, seed=config.seed
        )

        def draw(live: LiveTraining) -> None:
            metrics_table(live.runs)
            run = live.runs[0]
            held_out = len(run.probe_labels)
            st.caption(  # a handful of test faces: one image is a big step in accuracy
                f"Test accuracy here is measured on {held_out} held-out images of "
                f"{run.num_classes} people: one image more or less right moves it by "
                f"{100 / max(held_out, 1):.0f} %."
            )
            names = run.class_names
            show_figures(["view", "curves"], live.runs, key="faces_closed", names=names)

        live_page(
            "faces_closed",
            list(setup.configs),
            lambda configs: recipe,
            speed=config.speed,
            draw=draw,
            setup=(k,),
            offer_mnist=False,
        )
    else:
        st.info("Choose at least one loss.")


def verify(losses: tuple[str, ...], dim: int, steps: int, seed: int, augment: bool) -> dict:
    bar = st.progress(0.0, text="preparing")
    setup = open_set_config(losses, dim=dim, steps=steps, seed=seed)
    result = open_set_experiment(
        setup, augment=augment, progress=lambda f, text: bar.progress(f, text=text)
    )
    bar.progress(1.0, text="Table 3 on the training, held-out and unseen images")
    unseen = (setup.verify_images, setup.verify_labels)
    table3 = {
        LOSS_NAMES[name]: table3_sets(run, unseen=unseen)
        for name, run in result.comparison.runs.items()
    }
    bar.empty()
    return {
        "table3": table3,
        "key": (losses, dim, steps, seed, augment),
        "reports": {LOSS_NAMES[name]: report for name, report in result.reports.items()},
        "images": setup.verify_images,
        "people": len(setup.train_people),
        "held_out": len(setup.verify_people),
        "seconds": result.seconds,
    }


with open_tab:
    st.markdown(
        "The real use: train on 30 of the 40 people with a 32-D embedding, then decide for "
        "pairs of images of the **other 10** whether they show the same person, by the cosine "
        "of their embeddings. All losses train in lock-step on the same batches."
    )
    st.info(OPEN_SET_FINDINGS, icon=":material/science:")
    left, middle, right = st.columns(3)
    open_losses = left.multiselect(
        "losses",
        list(FACE_LOSSES),
        default=list(FACE_LOSSES),
        format_func=LOSS_NAMES.get,
        max_selections=6,
        key="faces_open_losses",
    )
    open_dim = middle.select_slider(
        "embedding dimension", [8, 16, 32, 64], OPEN_SET_DIM, key="faces_open_dim"
    )
    steps = right.select_slider(
        "training steps", [100, 200, 300, 500, 800], OPEN_SET_STEPS, key="faces_open_steps"
    )
    augment = st.checkbox(
        "augment the training faces (random flips and shifts of up to 2 pixels)",
        value=True,
        key="faces_open_augment",
    )
    key = (tuple(open_losses), open_dim, steps, config.seed, augment)
    if st.button("Run the open-set experiment", type="primary", disabled=not open_losses):
        with limited("open-set run") as allowed:  # one at a time on the server (ui.limits)
            if allowed:
                st.session_state["faces_open"] = verify(*key)
    result = st.session_state.get("faces_open")
    if result and result["key"] == key:
        reports = result["reports"]
        st.caption(
            f"Trained on {result['people']} people, verified on {result['held_out']} unseen "
            f"people in {result['seconds']:.0f} s."
        )
        table = pd.DataFrame(
            [
                {
                    "loss": name,
                    "AUC": round(r.auc, 4),
                    "EER %": round(100 * r.eer, 1),
                    "TAR @ FAR 1 % (%)": round(100 * r.tar_at_far.get(0.01, 0.0), 1),
                    "same-person pairs": r.n_positive,
                    "different-person pairs": r.n_negative,
                }
                for name, r in reports.items()
            ]
        )
        st.dataframe(table, hide_index=True, width="stretch")
        st.markdown("**Angle statistics on three sets** (ArcFace paper, Table 3)")
        frames = [table3_frame(rows).assign(loss=name) for name, rows in result["table3"].items()]
        table3 = pd.concat(frames, ignore_index=True)
        st.dataframe(table3[["loss", *table3.columns[:-1]]], hide_index=True, width="stretch")
        definitions_caption()
        live_plotly(roc_figure(reports), key="faces_roc")
        live_plotly(pair_angle_panels(reports), key="faces_pairs")
        chosen = st.selectbox("hardest pairs of", list(reports), key="faces_hard_loss")
        report = reports[chosen]
        images = result["images"]
        for label, pair in (
            ("Hardest false match: two different people, most alike", report.hardest_false_match),
            (
                "Hardest false non-match: the same person, least alike",
                report.hardest_false_non_match,
            ),
        ):
            st.markdown(f"**{label}** — cosine {pair.similarity:.3f}")
            st.image([images[pair.first], images[pair.second]], width=128, clamp=True)
        st.caption(CREDIT)
    elif result:
        st.info("The settings changed: run the experiment again to see their results.")
