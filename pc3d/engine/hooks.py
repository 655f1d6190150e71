"""Hooks: a tqdm progress bar with ETA over training and evaluation; BEV PNGs of evaluated frames;
folding BatchNorms for tests; training the last epochs without augmentation."""
import copy
from typing import Optional

from mmengine.hooks import Hook

from pc3d.registry import HOOKS


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """Shows a tqdm bar over all training iterations (ETA to the end of training, current loss) and one
    per validation/test pass. Logging and checkpointing are unaffected (LoggerHook still writes logs).

    Args:
        disable: True hides the bars, False always shows them, None (tqdm's default) hides them when
            stderr is not a terminal.
        labels: bar descriptions by pass, e.g. ``{'train': 'train', 'test': 'evaluate trained'}``; passes
            not named keep ``'train'``, ``'val'``, ``'test'``.
    """

    priority = "VERY_LOW"

    def __init__(self, disable: Optional[bool] = None, labels: Optional[dict] = None):
        unknown = set(labels or {}) - {"train", "val", "test"}
        if unknown:
            raise ValueError(f"ProgressBarHook: labels has unknown passes {sorted(unknown)} "
                             f"(use 'train', 'val', 'test')")
        self.disable = disable
        self.labels = {"train": "train", "val": "val", "test": "test", **(labels or {})}
        self._train = self._eval = None

    def _bar(self, total, desc, initial=0):
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, desc=desc, unit="it", dynamic_ncols=True, leave=True,
                    disable=self.disable)

    def before_train(self, runner) -> None:
        self._train = self._bar(runner.max_iters, self.labels["train"], initial=runner.iter)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self._train is None:
            return
        self._train.update(1)
        if outputs and "loss" in outputs:
            self._train.set_postfix(epoch=runner.epoch + 1, loss=f"{float(outputs['loss'].detach()):.3f}", refresh=False)

    def after_train(self, runner) -> None:
        if self._train is not None:
            self._train.close()
            self._train = None

    def _start_eval(self, runner, loop, desc):
        self._eval = self._bar(len(loop.dataloader), desc)

    def before_val_epoch(self, runner) -> None:
        self._start_eval(runner, runner.val_loop, self.labels["val"])

    def before_test_epoch(self, runner) -> None:
        self._start_eval(runner, runner.test_loop, self.labels["test"])

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self._eval is not None:
            self._eval.update(1)

    after_test_iter = after_val_iter

    def after_val_epoch(self, runner, metrics=None) -> None:
        if self._eval is not None:
            self._eval.close()
            self._eval = None

    after_test_epoch = after_val_epoch


def _copy(x):
    """A CPU copy of a tensor or array that outlives its batch (None stays None)."""
    if x is None:
        return None
    return x.detach().cpu().clone() if hasattr(x, "detach") else copy.deepcopy(x)


@HOOKS.register_module()
class BEVVisualizationHook(Hook):
    """Writes a BEV PNG (points, GT green, predictions red with scores) for evaluated frames.

    Args:
        out_dir: folder for ``<frame_id>.png`` (relative paths are under the run's work dir).
        max_frames: stop after this many frames (None = every evaluated frame).
        score_threshold: predictions below it are not drawn.
        pc_range: the view [x0, y0, z0, x1, y1, z1] (default: each frame's point extent).
        defer: keep the frames (points, boxes, scores) and draw them only when ``write_pending`` is
            called, so that an evaluation pass is not slowed by drawing and the drawing can be shown as
            its own step.
    """

    priority = "LOW"

    def __init__(self, out_dir: str, max_frames: Optional[int] = None, score_threshold: float = 0.3,
                 pc_range=None, defer: bool = False):
        self.out_dir, self.max_frames = out_dir, max_frames
        self.score_threshold, self.pc_range = score_threshold, pc_range
        self.defer = defer
        self.written = []
        self.pending = []  # defer=True: (path, points (P, C), gt (G, 7+), pred (B, 7+), scores (B,), title)

    def write_pending(self, on_written=None):
        """Draws the frames kept by ``defer=True``; calls ``on_written(path)`` after each picture and
        returns the paths written."""
        from pc3d.visualization import draw_bev

        paths = []
        while self.pending:
            path, points, gt, pred, scores, title = self.pending.pop(0)
            paths.append(draw_bev(path, points, gt, pred, scores, pc_range=self.pc_range,
                                  score_threshold=self.score_threshold, title=title))
            self.written.append(paths[-1])
            if on_written is not None:
                on_written(paths[-1])
        return paths

    def _draw(self, runner, data_batch, outputs) -> None:
        import os.path as osp

        from pc3d.visualization import draw_bev

        if not data_batch or outputs is None:
            return
        out_dir = self.out_dir if osp.isabs(self.out_dir) else osp.join(runner.work_dir, self.out_dir)
        points = data_batch["points"]
        for i, result in enumerate(outputs):
            if self.max_frames is not None and len(self.written) + len(self.pending) >= self.max_frames:
                return
            frame_points = points[points[:, 0] == i, 1:]
            name = str(result.get("frame_id", f"frame_{len(self.written) + len(self.pending):06d}"))
            if self.defer:
                self.pending.append((osp.join(out_dir, f"{name}.png"), _copy(frame_points),
                                     _copy(result.get("gt_boxes")), _copy(result["pred_boxes"]),
                                     _copy(result["pred_scores"]), name))
                continue
            self.written.append(draw_bev(osp.join(out_dir, f"{name}.png"), frame_points, result.get("gt_boxes"),
                                         result["pred_boxes"], result["pred_scores"], pc_range=self.pc_range,
                                         score_threshold=self.score_threshold, title=name))

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._draw(runner, data_batch, outputs)

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._draw(runner, data_batch, outputs)


@HOOKS.register_module()
class FuseConvBNHook(Hook):
    """Folds the model's BatchNorms into their convolutions before a test pass (``tools/test.py
    --fuse-conv-bn``): the checkpoint is loaded and the model is in eval mode by ``before_test_epoch``.
    Only for test runs: a folded model cannot be trained further."""

    def before_test_epoch(self, runner) -> None:
        from mmengine.model import is_model_wrapper

        from pc3d.models.fuse import fuse_conv_bn

        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        model.eval()
        runner.logger.info(f"FuseConvBNHook: {fuse_conv_bn(model)} BatchNorm layers folded into convolutions")


def _pipeline_dataset(dataset):
    """The dataset that owns the transform ``pipeline``, through mmengine's wrappers (``.dataset``)."""
    seen = dataset
    while not hasattr(seen, "pipeline") and hasattr(seen, "dataset"):
        seen = seen.dataset
    if not hasattr(seen, "pipeline") or not hasattr(seen.pipeline, "transforms"):
        raise TypeError(f"DisableAugmentationHook: training dataset {type(dataset).__name__} has no transform "
                        f"pipeline (a Compose) to change")
    return seen


@HOOKS.register_module()
class DisableAugmentationHook(Hook):
    """Trains the last ``num_last_epochs`` epochs without the named augmentations (OpenPCDet's
    ``DisableAugmentationHook``: the model ends on unaugmented scenes).

    From the epoch ``max_epochs - num_last_epochs`` on (0-based; also after a resume there), the
    training dataset's pipeline loses every transform whose class name is in ``disable_types``; the
    others (range filter, point shuffle, feature squashing) stay in order. DataLoader workers hold a copy
    of the dataset, so persistent workers are restarted to see the new pipeline.

    Args:
        num_last_epochs: epochs at the end trained without the augmentations (>= 1).
        disable_types: transform class names to drop, e.g. ('ObjectSample', 'RandomFlip',
            'GlobalRotScaleTrans').
    """

    priority = "NORMAL"

    def __init__(self, num_last_epochs: int = 1, disable_types=("ObjectSample", "RandomFlip", "GlobalRotScaleTrans")):
        if int(num_last_epochs) < 1:
            raise ValueError(f"DisableAugmentationHook: num_last_epochs must be >= 1, got {num_last_epochs}")
        if isinstance(disable_types, str) or not disable_types:
            raise ValueError(f"DisableAugmentationHook: disable_types must be a non-empty list of transform "
                             f"class names, got {disable_types!r}")
        self.num_last_epochs, self.disable_types = int(num_last_epochs), tuple(disable_types)
        self.disabled = False

    def before_train_epoch(self, runner) -> None:
        if self.disabled or runner.epoch < runner.max_epochs - self.num_last_epochs:
            return
        from pc3d.datasets.transforms import Compose

        loader = runner.train_dataloader
        dataset = _pipeline_dataset(loader.dataset)
        transforms = dataset.pipeline.transforms
        names = {type(t).__name__ for t in transforms}
        missing = set(self.disable_types) - names
        if missing:
            raise ValueError(f"DisableAugmentationHook: the training pipeline has no {sorted(missing)} "
                             f"(it has {[type(t).__name__ for t in transforms]})")
        kept = Compose([])
        kept.transforms = [t for t in transforms if type(t).__name__ not in self.disable_types]
        dataset.pipeline = kept
        iterator = getattr(loader, "_iterator", None)
        if iterator is not None:  # persistent workers were started with the old pipeline
            shutdown = getattr(iterator, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()
            loader._iterator = None
        self.disabled = True
        runner.logger.info(f"DisableAugmentationHook: epoch {runner.epoch + 1} of {runner.max_epochs} on without "
                           f"{list(self.disable_types)}; pipeline now {[type(t).__name__ for t in kept.transforms]}")
