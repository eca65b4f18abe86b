"""A page whose script raises, to see what a visitor is shown (tests/test_deployment.py)."""

import streamlit as st

st.title("A page that fails")
st.write("before the failure")
raise ZeroDivisionError("secret detail of the failure")
