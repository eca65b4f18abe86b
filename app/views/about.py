"""About: what the lab shows, where the formulas and the data come from."""

import streamlit as st

st.title("About Hypersphere Margin Lab")
st.markdown(
    """
This lab trains a small convolutional network live and shows where it puts every image:
on a circle (2-D embeddings) or a sphere (3-D). Margin losses such as **ArcFace** push each
class into its own region and leave grey **margin bands** between the regions; the scale
**s** and the margin **m** decide how wide they are.

**Papers.** NormFace (Wang et al., ACM MM 2017) · SphereFace (Liu et al., CVPR 2017) ·
CosFace (Wang et al., CVPR 2018) · ArcFace (Deng et al., CVPR 2019) · center loss
(Wen et al., ECCV 2016) · sub-center ArcFace (Deng et al., ECCV 2020).

**Data.** MNIST: Yann LeCun and Corinna Cortes, CC BY-SA 3.0 (a 10,000-image subset ships
with the app). Olivetti faces: AT&T Laboratories Cambridge. LFW: University of
Massachusetts, Amherst.
"""
)
