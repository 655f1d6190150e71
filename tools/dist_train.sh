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
CONFIG=$1
NPROC=$2
shift 2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
PYTHON=${PYTHON:-python}
DIR=$(cd "$(dirname "$0")" && pwd)

exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --nproc_per_node="$NPROC" \
    --master_addr="$MASTER_ADDR" --master_port="$MASTER_PORT" \
    "$DIR/train.py" "$CONFIG" --launcher pytorch "$@"
