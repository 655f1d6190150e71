"""pc3d's Runner: mmengine's Runner whose checkpoints are written atomically."""
import os
import os.path as osp

from mmengine.runner import Runner as MMEngineRunner


class Runner(MMEngineRunner):
    """mmengine ``Runner`` with atomic checkpoint files.

    ``save_checkpoint`` (called by ``CheckpointHook`` for periodic, last and best checkpoints) first
    writes ``.<name>.tmp`` next to the target and renames it over the target only once complete, so a
    crash or kill during a save keeps the previous checkpoint of that name intact.
    """

    def save_checkpoint(self, out_dir: str, filename: str, *args, **kwargs) -> None:
        tmp_name = f".{filename}.tmp"
        try:
            super().save_checkpoint(out_dir, tmp_name, *args, **kwargs)
            tmp, final = osp.join(out_dir, tmp_name), osp.join(out_dir, filename)
            with open(tmp, "rb+") as f:  # data on disk before the rename makes it visible
                os.fsync(f.fileno())
            os.replace(tmp, final)
        finally:
            if osp.exists(osp.join(out_dir, tmp_name)):
                os.remove(osp.join(out_dir, tmp_name))

