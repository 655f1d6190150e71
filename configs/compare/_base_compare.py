# What every model of the backbone comparison shares: the default pillar detector's data, range, 2D
# backbone, head and optimiser (../centerpoint_pillar_synthetic.py), and one training budget.
_base_ = ['../centerpoint_pillar_synthetic.py']
# The comparison's budget: 6 epochs of the 160 simulated training frames for every model (half the default
# detector's schedule, so that all four fit a CPU afternoon).
max_epochs = 6
param_scheduler = [
    dict(type='OneCycleLR', eta_max=3e-3, pct_start=0.4, div_factor=10, final_div_factor=100,
         by_epoch=True, convert_to_iter_based=True, begin=0, end=max_epochs),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
# The head as it was when the comparison was measured (configs/compare/README.md): z and log-height
# weighted 2x (the default detector has since moved to 3x).
model = dict(head=dict(code_weights=(1.0, 1.0, 2.0, 1.0, 1.0, 2.0, 1.0, 1.0, 1.0, 1.0)))
