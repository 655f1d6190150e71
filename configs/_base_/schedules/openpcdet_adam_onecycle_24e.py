# OpenPCDet's adam_onecycle as DSVT trains it on Waymo (dsvt_plain_1f_onestage.yaml / dsvt_3D_1f_onestage.yaml,
# OPTIMIZATION): Adam with decoupled weight decay 0.05 on every parameter (fastai OptimWrapper, true_wd,
# bn_wd), betas (momentum, 0.99), gradient norm clipped at 10, 24 epochs; per iteration the learning rate
# rises from LR / DIV_FACTOR to LR over the first int(PCT_START * T) iterations and falls to
# LR / DIV_FACTOR / 1e4 (cosine both ways) while the momentum (Adam's beta1) goes MOMS[0] -> MOMS[1] ->
# MOMS[0]. MOMENTUM 0.9, DECAY_STEP_LIST, LR_DECAY, LR_CLIP and LR_WARMUP (False) are unused by adam_onecycle.
max_epochs = 24  # NUM_EPOCHS
optim_wrapper = dict(
    type='OptimWrapper',
    # lr and beta1 are set by the schedulers below before the first iteration
    optimizer=dict(type='AdamW', lr=0.003 / 100, betas=(0.95, 0.99), weight_decay=0.05, eps=1e-8),
    clip_grad=dict(max_norm=10, norm_type=2))  # GRAD_NORM_CLIP
param_scheduler = [
    # LR 0.003, DIV_FACTOR 100, PCT_START 0.1
    dict(type='CosinePhasesLR', values=(0.003 / 100, 0.003, 0.003 / 100 / 1e4), milestones=(0.1,),
         by_epoch=True, convert_to_iter_based=True, begin=0, end=max_epochs),
    # MOMS [0.95, 0.85]
    dict(type='CosinePhasesMomentum', values=(0.95, 0.85, 0.95), milestones=(0.1,),
         by_epoch=True, convert_to_iter_based=True, begin=0, end=max_epochs),
]
# Evaluated once, after training (OpenPCDet's test.py on the last checkpoint). Resumes mid-epoch.
train_cfg = dict(type='ResumableEpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
