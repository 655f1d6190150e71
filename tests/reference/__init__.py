"""Plain-PyTorch / Python references for pc3d's compiled ops (tests only: slow but independent)."""
