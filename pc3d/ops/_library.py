"""Loads the compiled op library once, with a clear error when it has not been built."""
import importlib

_loaded = False


def load_library() -> None:
    """Import ``pc3d._C`` so that ``torch.ops.pc3d.*`` is registered.

    Raises:
        ImportError: when the extension was not built, with the command that builds it.
    """
    global _loaded
    if _loaded:
        return
    import torch  # noqa: F401  (loads libtorch, which pc3d._C links against)

    try:
        importlib.import_module("pc3d._C")
    except ModuleNotFoundError as exc:  # pragma: no cover - only when the build step was skipped
        raise ImportError(
            "pc3d's compiled ops (pc3d._C) are not built: run `make setup` "
            "(or `pip install --no-build-isolation -e .`) in the repository root"
        ) from exc
    _loaded = True
