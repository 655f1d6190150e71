"""``tools/create_data.py`` subcommands: one module per dataset, each with ``add_parser(subparsers)``
registering its subcommand (whose ``func`` default runs it). Add a dataset by adding a module and its
name to ``SUBCOMMANDS``; modules are imported only when the tool starts, and heavy imports stay inside
the run functions."""
SUBCOMMANDS = ("synthetic", "waymo", "nuscenes", "nuscenes_sim", "scannet", "scannet_sim", "custom")
