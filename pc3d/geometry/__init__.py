"""Geometry shared by loaders and metrics (coordinate frames, rotations), independent of both."""
