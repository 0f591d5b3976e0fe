"""SGUS Studio core: everything below the user interface (never imports streamlit)."""

__version__ = "0.1.0"
