"""Writing files so that an interrupted write never leaves a truncated one behind."""
import os
from pathlib import Path
from typing import BinaryIO, Callable, Dict

import numpy as np


def atomic_write(path, write: Callable[[BinaryIO], None]) -> Path:
    """Calls ``write(fh)`` on ``<path>.tmp`` opened for binary writing, then renames it over ``path``. Returns the
    path."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        write(fh)
    os.replace(tmp, path)
    return path


def atomic_savez(path, arrays: Dict[str, np.ndarray], compressed: bool = False) -> Path:
    """Saves ``arrays`` as an ``.npz`` at ``path``: written to ``<path>.tmp`` first and renamed over ``path`` once
    complete. Returns the path."""
    # A file object keeps numpy from appending ".npz" to the temporary name.
    return atomic_write(path, lambda fh: (np.savez_compressed if compressed else np.savez)(fh, **arrays))
