#!/usr/bin/env bash
# Multi-process training with torchrun (one process per GPU, or per CPU worker with gloo):
#   tools/dist_train.sh CONFIG NUM_PROCS [train.py args...]
# Multi-node: run the same command on every node with NNODES, NODE_RANK, MASTER_ADDR (node 0's
# address) and MASTER_PORT set, e.g. NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 tools/dist_train.sh ...
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG NUM_PROCS [train.py args...]" >&2
    exit 2
fi
DIR=$(cd "$(dirname "$0")" && pwd)
CONFIG=$1
NPROC=$2
shift 2
exec "$DIR/dist_launch.sh" "$NPROC" "$DIR/train.py" "$CONFIG" "$@"
