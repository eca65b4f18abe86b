"""About: what the lab shows, where the formulas and the data come from."""

import streamlit as st

from marginlab.data.datasets import DatasetUnavailable, load_mnist_toy
from ui.service import server_load_line

try:  # counted from the shipped file itself, so the page cannot drift from the data
    toy = load_mnist_toy()
    subset = (
        f"a subset of {len(toy.train_labels) + len(toy.test_labels):,} images ships with the "
        f"app: {len(toy.train_labels):,} to train on, {len(toy.test_labels):,} to test"
    )
except DatasetUnavailable:
    subset = "the shipped subset is missing from this checkout"

st.title("About Hypersphere Margin Lab")
st.markdown(
    f"""
This lab trains a small convolutional network live and shows where it puts every image:
on a circle (2-D embeddings) or a sphere (3-D). Margin losses such as **ArcFace** push each
class into its own region and leave grey **margin bands** between the regions; the scale
**s** and the margin **m** decide how wide they are.

**Papers.** NormFace (Wang et al., ACM MM 2017) · SphereFace (Liu et al., CVPR 2017) ·
CosFace (Wang et al., CVPR 2018) · ArcFace (Deng et al., CVPR 2019) · center loss
(Wen et al., ECCV 2016) · sub-center ArcFace (Deng et al., ECCV 2020) · AdaCos (Zhang et
al., CVPR 2019) · CurricularFace (Huang et al., CVPR 2020) · MagFace (Meng et al., CVPR 2021)
· AdaFace (Kim et al., CVPR 2022) · ElasticFace (Boutros et al., CVPRW 2022).

**Data.** MNIST: Yann LeCun and Corinna Cortes, CC BY-SA 3.0 ({subset}). Olivetti faces:
AT&T Laboratories Cambridge. LFW: University of Massachusetts, Amherst.
"""
)
# Shared runs, private trainers, who waits, memory: what a teacher checks before a class.
st.caption(server_load_line())
