#!/usr/bin/env python
"""Create dataset files: ``python tools/create_data.py <dataset> [options]``.

Subcommands (one module each in ``pc3d/datasets/converters/``):
    synthetic   simulate pc3d's built-in LiDAR dataset, e.g.
                ``python tools/create_data.py synthetic --out data/synthetic --train 200 --val 50 --workers 2``
    custom      index your own labelled point clouds (docs/custom_dataset.md), e.g.
                ``python tools/create_data.py custom --root data/mydata --columns x,y,z,intensity --gt-database``
Run ``python tools/create_data.py <dataset> --help`` for a subcommand's options.
"""
import argparse
import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's pc3d first


def main(argv=None):
    from pc3d.datasets.converters import SUBCOMMANDS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"pc3d.datasets.converters.{name}").add_parser(sub)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
