"""Waymo Open Dataset support: v2 parquet and OpenPCDet-processed layouts, without TensorFlow.

Modules, one stage each: ``schema`` (v2 column names and records), ``range_image`` (range image <->
points), ``v2_reader`` / ``v2_writer`` (parquet components), ``openpcdet`` / ``openpcdet_writer``
(``<segment>/<NNNN>.npy`` + ``waymo_infos_<split>.pkl``), ``dataset`` (``WaymoDataset``),
``simulated`` (the simulator's scans as v2 files), ``convert`` (``tools/create_data.py waymo``).
pyarrow is imported only inside the functions that read or write parquet.
"""
from .dataset import WaymoDataset

__all__ = ["WaymoDataset"]
