"""pc3d's Runner: mmengine's Runner whose checkpoints are written atomically and whose console can be
quieter than its log file."""
import logging
import os
import os.path as osp

from mmengine.runner import Runner as MMEngineRunner

# mmengine's own notices that say nothing about the user's run (its file client's deprecation aliases,
# metrics without a key prefix): kept in the log file, not shown on a console raised by console_log_level.
MMENGINE_NOTICES = ("will be deprecated", "The prefix is not set in metric class")


class DropNotices(logging.Filter):
    """Logging filter that drops records whose message contains one of ``notices``."""

    def __init__(self, notices=MMENGINE_NOTICES):
        super().__init__()
        self.notices = tuple(notices)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(n in message for n in self.notices)


class Runner(MMEngineRunner):
    """mmengine ``Runner`` with atomic checkpoint files and an optional quieter console.

    ``save_checkpoint`` (called by ``CheckpointHook`` for periodic, last and best checkpoints) first
    writes ``.<name>.tmp`` next to the target and renames it over the target only once complete, so a
    crash or kill during a save keeps the previous checkpoint of that name intact.

    Console: a config key ``console_log_level`` (e.g. ``'WARNING'``; default unset = ``log_level``)
    raises the level of the logger's console handler only, and that handler then also drops mmengine's
    own notices (``MMENGINE_NOTICES``). The log file ``<work_dir>/<timestamp>/<timestamp>.log`` keeps
    ``log_level`` and so still holds the environment and config dumps, the hook table, the
    per-iteration lines and every warning.
    """

    def build_logger(self, log_level="INFO", log_file=None, **kwargs):
        logger = super().build_logger(log_level=log_level, log_file=log_file, **kwargs)
        console_level = self.cfg.get("console_log_level") if self.cfg else None
        if console_level is not None:
            if isinstance(console_level, str):
                if console_level.upper() not in logging._nameToLevel:
                    raise ValueError(f"config console_log_level: unknown level {console_level!r} "
                                     f"(use DEBUG, INFO, WARNING, ERROR or CRITICAL)")
                console_level = logging._nameToLevel[console_level.upper()]
            for handler in logger.handlers:
                # mmengine's console handler is the one StreamHandler that is not a FileHandler.
                if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                    handler.setLevel(max(handler.level, int(console_level)))
                    if not any(isinstance(f, DropNotices) for f in handler.filters):
                        handler.addFilter(DropNotices())
        return logger

    def save_checkpoint(self, out_dir: str, filename: str, *args, **kwargs) -> None:
        if self.rank != 0:  # mmengine's save_checkpoint writes on rank 0 only (master_only)
            return
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
