"""Hypersphere Margin Lab core: margins, heads, data, training, geometry, figures.

Nothing in this package imports Streamlit; the app under app/ is a thin layer on top.
"""

__version__ = "0.1.0"
