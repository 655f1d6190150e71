#!/usr/bin/env bash
# Multi-process evaluation with torchrun; every rank evaluates a share of the frames and the metric
# gathers all of them on rank 0 (the result equals a single-process evaluation):
#   tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [test.py args...]
# Multi-node: as tools/dist_train.sh (NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT).
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT NUM_PROCS [test.py args...]" >&2
    exit 2
fi
DIR=$(cd "$(dirname "$0")" && pwd)
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
shift 3
exec "$DIR/dist_launch.sh" "$NPROC" "$DIR/test.py" "$CONFIG" "$CHECKPOINT" "$@"
