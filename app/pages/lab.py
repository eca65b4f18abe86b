"""Lab: the live margin lab (work in progress: the dataset the lab trains on)."""

import streamlit as st

from marginlab.data import load_dataset

st.title("Margin Lab")
dataset = load_dataset("mnist-toy")
st.caption(f"Data: {dataset.source}")
st.write(
    f"{len(dataset.train_images):,} training and {len(dataset.test_images):,} test images "
    f"of {dataset.num_classes} classes, {dataset.image_shape[0]}×{dataset.image_shape[1]} pixels."
)
