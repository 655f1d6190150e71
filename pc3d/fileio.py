"""Writing files so that an interrupted write never leaves a truncated one behind."""
import os
from pathlib import Path
from typing import Dict

import numpy as np


def atomic_savez(path, arrays: Dict[str, np.ndarray], compressed: bool = False) -> Path:
    """Saves ``arrays`` as an ``.npz`` at ``path``: written to ``<path>.tmp`` first and renamed over ``path`` once
    complete. Returns the path."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:  # a file object keeps numpy from appending ".npz" to the temporary name
        (np.savez_compressed if compressed else np.savez)(fh, **arrays)
    os.replace(tmp, path)
    return path
