"""Precise BatchNorm statistics (pc3d.engine.precise_bn): recomputed over training batches with the final weights,
checked against statistics computed by hand, and written into the last checkpoint by the hook."""
import numpy as np
import pytest
import torch
from torch import nn


def _toy():
    from mmengine.model import BaseModel

    class Toy(BaseModel):
        """inputs (N, 3) -> Linear -> BatchNorm1d; the loss is the mean square of the normalised features."""

        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 4)
            self.bn = nn.BatchNorm1d(4)

        def forward(self, inputs, data_samples=None, mode="tensor"):
            x = torch.stack(inputs) if isinstance(inputs, list) else inputs
            y = self.bn(self.lin(x))
            return {"loss": y.pow(2).mean()} if mode == "loss" else [y]

    torch.manual_seed(0)
    return Toy()


def _batches(n, rows=8):
    gen = torch.Generator().manual_seed(1)
    # Each batch has its own offset: the exponential average of the last few would differ from their mean.
    return [dict(inputs=torch.randn(rows, 3, generator=gen) * (1 + i) + 3.0 * i) for i in range(n)]


def _by_hand(model, batches):
    with torch.no_grad():
        feats = [model.lin(b["inputs"]) for b in batches]
    return torch.stack([f.mean(0) for f in feats]).mean(0), torch.stack([f.var(0, unbiased=True) for f in feats]).mean(0)


def test_statistics_are_the_mean_over_the_batches_and_nothing_else_changes():
    from pc3d.engine import recompute_bn_stats

    model = _toy().eval()
    batches = _batches(5)
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    torch.manual_seed(123)
    np.random.seed(7)
    expected_draw = (torch.rand(3), np.random.rand())
    torch.manual_seed(123)
    np.random.seed(7)
    assert recompute_bn_stats(model, batches, num_batches=3) == 3
    # The global random streams are where they were (the training pipeline's augmentations draw from them).
    assert torch.equal(torch.rand(3), expected_draw[0]) and np.random.rand() == expected_draw[1]
    mean, var = _by_hand(model, batches[:3])  # only the first 3 batches are used
    torch.testing.assert_close(model.bn.running_mean, mean, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(model.bn.running_var, var, rtol=1e-6, atol=1e-6)
    assert not model.training and model.bn.momentum == 0.1
    for k, v in weights.items():
        assert torch.equal(model.state_dict()[k], v), k
    # The training default (momentum 0.1) would have left a different, recency-weighted average.
    ema = _toy()
    ema.train()
    with torch.no_grad():
        for b in batches[:3]:
            ema(**b, mode="loss")
    assert not torch.allclose(ema.bn.running_mean, mean, atol=1e-3)


def test_no_batches_leaves_the_statistics_and_bad_counts_are_refused():
    from pc3d.engine import recompute_bn_stats

    model = _toy()
    model.bn.running_mean.fill_(2.0)
    assert recompute_bn_stats(model, [], num_batches=4) == 0
    assert torch.equal(model.bn.running_mean, torch.full((4,), 2.0)) and model.bn.momentum == 0.1
    with pytest.raises(ValueError, match="num_batches"):
        recompute_bn_stats(model, _batches(1), num_batches=0)


def test_hook_writes_recomputed_statistics_into_the_last_checkpoint(tmp_path):
    from mmengine.runner import Runner

    from pc3d.engine import PreciseBNHook, recompute_bn_stats

    dataset = [dict(inputs=b["inputs"][0]) for b in _batches(4, rows=1)] * 2  # 8 samples, batches of 2
    runner = Runner(model=_toy(), work_dir=str(tmp_path), experiment_name="precise_bn",
                    train_dataloader=dict(dataset=dataset, sampler=dict(type="DefaultSampler", shuffle=False),
                                          batch_size=2, collate_fn=dict(type="pseudo_collate")),
                    train_cfg=dict(by_epoch=True, max_epochs=2),
                    optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
                    default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=1)),
                    custom_hooks=[PreciseBNHook(num_batches=3)])
    runner.train()
    first = torch.load(tmp_path / "epoch_1.pth", map_location="cpu", weights_only=False)["state_dict"]
    last = torch.load(tmp_path / "epoch_2.pth", map_location="cpu", weights_only=False)["state_dict"]
    # Rebuild the final model and recompute over the same first three batches of the (unshuffled) loader.
    check = _toy()
    check.load_state_dict(last)
    loader = [dict(inputs=[dataset[2 * i]["inputs"], dataset[2 * i + 1]["inputs"]]) for i in range(3)]
    recompute_bn_stats(check, loader, num_batches=3)
    torch.testing.assert_close(last["bn.running_mean"], check.bn.running_mean, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(last["bn.running_var"], check.bn.running_var, rtol=1e-6, atol=1e-6)
    assert int(last["bn.num_batches_tracked"]) == 3
    # Epoch 1 is not the last (interval 0): its checkpoint keeps the exponential average of training.
    assert int(first["bn.num_batches_tracked"]) == 4


def test_at_test_recomputes_after_the_checkpoint_is_loaded(tmp_path):
    from mmengine.evaluator import BaseMetric
    from mmengine.runner import Runner

    from pc3d.engine import PreciseBNHook, recompute_bn_stats

    class MeanOutput(BaseMetric):
        def process(self, data_batch, data_samples):
            self.results.append(float(torch.stack(list(data_samples)).mean()))

        def compute_metrics(self, results):
            return {"mean": float(np.mean(results))}

    trained = _toy()
    trained.bn.running_mean.fill_(5.0)  # statistics the recomputation must replace
    torch.save({"state_dict": trained.state_dict()}, tmp_path / "ckpt.pth")
    train = [dict(inputs=b["inputs"][0]) for b in _batches(6, rows=1)]
    loader = dict(sampler=dict(type="DefaultSampler", shuffle=False), batch_size=2,
                  collate_fn=dict(type="pseudo_collate"))
    # As tools/test.py builds it: the training config's train_dataloader is in runner.cfg, built only by the hook.
    runner = Runner(model=_toy(), work_dir=str(tmp_path), experiment_name="precise_bn_test",
                    test_dataloader=dict(dataset=[dict(inputs=torch.ones(3))] * 2, **loader),
                    test_cfg=dict(), test_evaluator=MeanOutput(), load_from=str(tmp_path / "ckpt.pth"),
                    custom_hooks=[PreciseBNHook(num_batches=2, at_test=True)],
                    cfg=dict(train_dataloader=dict(dataset=train, **loader)))
    runner.test()
    check = _toy()
    check.load_state_dict(trained.state_dict())
    recompute_bn_stats(check, [dict(inputs=[train[0]["inputs"], train[1]["inputs"]]),
                               dict(inputs=[train[2]["inputs"], train[3]["inputs"]])], num_batches=2)
    torch.testing.assert_close(runner.model.bn.running_mean, check.bn.running_mean, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(runner.model.bn.running_mean, torch.full((4,), 5.0))
    # Without a training loader in the config there is nothing to take statistics from: say so.
    bare = Runner(model=_toy(), work_dir=str(tmp_path / "bare"), experiment_name="precise_bn_bare",
                  test_dataloader=dict(dataset=[dict(inputs=torch.ones(3))] * 2, **loader),
                  test_cfg=dict(), test_evaluator=MeanOutput(), custom_hooks=[PreciseBNHook(num_batches=2, at_test=True)])
    with pytest.raises(ValueError, match="train_dataloader"):
        bare.test()
