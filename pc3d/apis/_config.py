"""Config resolution shared by the high-level APIs."""
from typing import Union


def load_config(config: Union[str, dict, "object"]):
    """A config file path, an mmengine ``Config`` or a plain dict -> mmengine ``Config``."""
    from mmengine.config import Config

    if isinstance(config, Config):
        return config
    if isinstance(config, dict):
        return Config(config)
    if isinstance(config, str):
        return Config.fromfile(config)
    raise ValueError(f"config must be a path, a dict or an mmengine Config, got {type(config).__name__}")
