#!/usr/bin/env python
"""Convert an official checkpoint into a pc3d checkpoint:
``python tools/convert_checkpoint.py SRC DST --from openpcdet|flatformer|scatterformer --config CFG``.

SRC is read with ``torch.load(weights_only=True)``; every official tensor must land in the pc3d model of CFG and
every pc3d tensor of a converted module must come from SRC, or the conversion stops and names the keys. A
checkpoint with only some modules (e.g. only ``backbone_3d.*``) converts those and lists the modules left without
weights. DST loads with ``tools/test.py CFG DST`` and ``pc3d.apis.init_model(CFG, DST)``."""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's pc3d first


def parse_args(argv=None):
    from pc3d.apis.convert import SOURCES

    parser = argparse.ArgumentParser(description="Convert an official checkpoint into a pc3d checkpoint")
    parser.add_argument("src", help="official checkpoint (.pth)")
    parser.add_argument("dst", help="pc3d checkpoint to write")
    parser.add_argument("--from", dest="source", required=True, choices=sorted(SOURCES),
                        help="which official code wrote SRC")
    parser.add_argument("--config", required=True, help="the pc3d config whose model receives the weights")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    from pc3d.apis.convert import CheckpointConversionError, convert_checkpoint

    args = parse_args(argv)
    try:
        _, result = convert_checkpoint(args.src, args.config, args.source, dst=args.dst)
    except CheckpointConversionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {args.dst}: {len(result.state_dict)} tensors into {', '.join(result.converted_modules)}")
    if result.unconverted_modules:
        print(f"modules left without weights (initialised as the config builds them): "
              f"{', '.join(result.unconverted_modules)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
