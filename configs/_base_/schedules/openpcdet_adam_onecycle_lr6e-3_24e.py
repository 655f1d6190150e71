# ScatterFormer's adam_onecycle (tools/cfgs/waymo_models/scatterformer.yaml, OPTIMIZATION): DSVT's schedule
# (openpcdet_adam_onecycle_24e.py) with LR 0.006.
_base_ = ['./openpcdet_adam_onecycle_24e.py']
optim_wrapper = dict(optimizer=dict(lr=0.006 / 100))
param_scheduler = [
    dict(type='CosinePhasesLR', values=(0.006 / 100, 0.006, 0.006 / 100 / 1e4), milestones=(0.1,),
         by_epoch=True, convert_to_iter_based=True, begin=0, end=24),
    dict(type='CosinePhasesMomentum', values=(0.95, 0.85, 0.95), milestones=(0.1,),
         by_epoch=True, convert_to_iter_based=True, begin=0, end=24),
]
