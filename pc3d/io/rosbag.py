"""ROS 1 / ROS 2 bags of ``sensor_msgs/PointCloud2`` through ``rosbags`` (pure Python: no ROS install).

A ROS 1 bag is a ``.bag`` file; a ROS 2 bag is a folder with ``metadata.yaml`` (sqlite3 ``.db3`` or
``.mcap`` storage). Every PointCloud2 message is one frame; its fields (``x, y, z, intensity, ring, t``,
...) become the columns of a :class:`~pc3d.io.formats.RawCloud`.
"""
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from .formats import PointCloudError, RawCloud, _from_columns

POINTCLOUD2 = "sensor_msgs/msg/PointCloud2"
# sensor_msgs/PointField datatype -> numpy scalar type (little-endian; big-endian swaps below).
POINTFIELD_DTYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}


def _typestores():
    try:
        from rosbags.typesys import Stores, get_typestore
    except ImportError as e:
        raise ImportError("reading ROS bags needs rosbags: pip install rosbags") from e
    return get_typestore(Stores.ROS1_NOETIC), get_typestore(Stores.ROS2_HUMBLE)


def pointcloud2_to_cloud(msg, source: str) -> RawCloud:
    """A deserialised ``sensor_msgs/PointCloud2`` -> RawCloud (one column per numeric field element)."""
    step, width, height = int(msg.point_step), int(msg.width), int(msg.height)
    data = np.asarray(msg.data, dtype=np.uint8)
    order = ">" if msg.is_bigendian else "<"
    names, formats, offsets = [], [], []
    for f in msg.fields:
        if f.datatype not in POINTFIELD_DTYPES:
            raise PointCloudError(f"{source}: PointCloud2 field {f.name!r} has unknown datatype {f.datatype}")
        count = max(int(f.count), 1)
        names.append(f.name)
        formats.append((order + POINTFIELD_DTYPES[f.datatype], (count,)) if count > 1
                       else order + POINTFIELD_DTYPES[f.datatype])
        offsets.append(int(f.offset))
    n = width * height
    row_step = int(msg.row_step) or width * step
    need = (height - 1) * row_step + width * step if n else 0
    if step <= 0 or len(data) < need:
        raise PointCloudError(f"{source}: PointCloud2 has {len(data)} data bytes, {n} points of {step} bytes "
                              f"(rows of {row_step}) need {need}: truncated message")
    try:
        dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": step})
    except (ValueError, TypeError) as e:
        raise PointCloudError(f"{source}: PointCloud2 fields do not fit its point_step {step}: {e}") from e
    rows = [np.frombuffer(data[r * row_step: r * row_step + width * step].tobytes(), dtype=dtype)
            for r in range(height)]
    arr = np.concatenate(rows) if rows else np.zeros(0, dtype)
    cloud = _from_columns(source, [(name, arr[name]) for name in names])
    stamp = msg.header.stamp
    cloud.timestamp = int(stamp.sec) * 1_000_000_000 + int(getattr(stamp, "nanosec", getattr(stamp, "nsec", 0)))
    cloud.meta["frame_id"] = str(msg.header.frame_id)
    return cloud


def read_bag(path, topic: Optional[str] = None, columns=None) -> Iterator[RawCloud]:
    """Frames of a ROS 1 or ROS 2 bag, one per PointCloud2 message, in time order.

    Args:
        path: ``.bag`` file, ROS 2 bag folder (or its ``.db3`` / ``.mcap`` file).
        topic: the PointCloud2 topic to read when the bag has several (required then).
        columns: ignored (the message names its fields); accepted for a uniform call.

    Raises:
        PointCloudError: unreadable bag, no PointCloud2 topic, unknown ``topic``, several topics and none
            chosen.
    """
    _, ros2_store = _typestores()
    from rosbags.highlevel import AnyReader

    p = Path(path)
    if p.suffix.lower() in (".db3", ".mcap") and (p.parent / "metadata.yaml").is_file():
        p = p.parent
    try:
        reader = AnyReader([p], default_typestore=ros2_store)
        reader.open()
    except Exception as e:  # rosbags raises ReaderError / AnyReaderError for anything it cannot read
        raise PointCloudError(f"{path}: not a readable ROS bag ({type(e).__name__}: {str(e)[:300]})") from e
    try:
        clouds = [c for c in reader.connections if c.msgtype == POINTCLOUD2]
        topics = sorted({c.topic for c in clouds})
        if not topics:
            have = sorted({f"{c.topic} ({c.msgtype})" for c in reader.connections})
            raise PointCloudError(f"{path}: no sensor_msgs/PointCloud2 topic in this bag (topics: {have or 'none'})")
        if topic is None and len(topics) > 1:
            raise PointCloudError(f"{path}: several PointCloud2 topics {topics}: choose one with --topic")
        if topic is not None and topic not in topics:
            raise PointCloudError(f"{path}: no PointCloud2 topic {topic!r} (PointCloud2 topics: {topics})")
        chosen = [c for c in clouds if c.topic == (topic or topics[0])]
        for k, (conn, _, raw) in enumerate(reader.messages(connections=chosen)):
            source = f"{path}#{conn.topic}[{k}]"
            try:
                msg = reader.deserialize(raw, conn.msgtype)
            except Exception as e:
                raise PointCloudError(f"{source}: message does not deserialise as PointCloud2 ({e})") from e
            yield pointcloud2_to_cloud(msg, source)
    finally:
        reader.close()


def _pointcloud2(store, points: np.ndarray, fields: Sequence[str], stamp_ns: int, frame_id: str, ros1: bool):
    types = store.types
    header_kw = dict(stamp=types["builtin_interfaces/msg/Time"](sec=stamp_ns // 1_000_000_000,
                                                               nanosec=stamp_ns % 1_000_000_000),
                     frame_id=frame_id)
    if ros1:
        header_kw["seq"] = 0
    point_field = types["sensor_msgs/msg/PointField"]
    n, f = points.shape
    return types[POINTCLOUD2](
        header=types["std_msgs/msg/Header"](**header_kw), height=1, width=n,
        fields=[point_field(name=name, offset=4 * j, datatype=7, count=1) for j, name in enumerate(fields)],
        is_bigendian=False, point_step=4 * f, row_step=4 * f * n,
        data=np.ascontiguousarray(points, "<f4").view(np.uint8).reshape(-1), is_dense=True)


def write_bag(path, frames: Sequence[np.ndarray], fields: Sequence[str] = ("x", "y", "z", "intensity"),
              topic: str = "/points", frame_id: str = "lidar", period_ns: int = 100_000_000,
              extra_topics: Sequence[str] = ()):
    """Writes ``frames`` ((N_k, F) float32 each, columns ``fields``) as PointCloud2 messages: a ROS 1 bag
    when ``path`` ends with ``.bag``, else a ROS 2 bag folder (sqlite3). ``extra_topics`` adds
    ``std_msgs/String`` topics (so that tests can write a bag whose only topics are not point clouds).
    Returns the path."""
    ros1_store, ros2_store = _typestores()
    p = Path(path)
    ros1 = p.suffix.lower() == ".bag"
    store = ros1_store if ros1 else ros2_store
    if ros1:
        from rosbags.rosbag1 import Writer

        writer = Writer(p)
    else:
        from rosbags.rosbag2 import Writer

        writer = Writer(p, version=9)
    serialize = store.serialize_ros1 if ros1 else store.serialize_cdr
    with writer:
        conn = writer.add_connection(topic, POINTCLOUD2, typestore=store) if len(frames) else None
        for k, pts in enumerate(frames):
            pts = np.asarray(pts, np.float32).reshape(-1, len(fields))
            msg = _pointcloud2(store, pts, fields, (k + 1) * period_ns, frame_id, ros1)
            writer.write(conn, (k + 1) * period_ns, serialize(msg, POINTCLOUD2))
        for t in extra_topics:
            c = writer.add_connection(t, "std_msgs/msg/String", typestore=store)
            text = store.types["std_msgs/msg/String"](data="hello")
            writer.write(c, period_ns, serialize(text, "std_msgs/msg/String"))
    return p
