"""Recipes: complete training runs written with the public API only (``fastdl train MODEL``)."""
