"""Compiled ops with validated Python faces. Call these, never ``torch.ops.pc3d`` directly."""
from ._library import load_library

load_library()
