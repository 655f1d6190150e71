# FlatFormer's schedule (mit-han-lab/flatformer, configs/_base_/schedules/cosine_2x.py, with the model
# config's runner of 24 epochs): AdamW lr 1e-5, betas (0.9, 0.999), weight decay 0.05 except on
# parameters whose name holds 'norm' (paramwise_cfg.custom_keys; in FlatFormer, the transformer layers'
# LayerNorms), gradient norm clipped at 10; mmcv's 'cyclic' lr policy, one cycle: cosine up to 100 x lr over
# the first int(0.1 * T) iterations (step_ratio_up), then cosine down to 1e-3 x lr (target_ratio (100, 1e-3));
# no momentum schedule (momentum_config None).
max_epochs = 24  # runner.max_epochs
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-5, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.0)}),
    clip_grad=dict(max_norm=10, norm_type=2))  # optimizer_config.grad_clip
param_scheduler = [
    dict(type='CosinePhasesLR', values=(1e-5, 1e-5 * 100, 1e-5 * 1e-3), milestones=(0.1,),
         by_epoch=True, convert_to_iter_based=True, begin=0, end=max_epochs),
]
# evaluation.interval 24: once, after training. Resumes mid-epoch.
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
