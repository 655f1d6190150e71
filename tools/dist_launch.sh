#!/usr/bin/env bash
# torchrun launcher shared by dist_train.sh and dist_test.sh:
#   tools/dist_launch.sh NUM_PROCS SCRIPT [SCRIPT args...]   (SCRIPT gets --launcher pytorch appended)
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR (node 0's address) and MASTER_PORT on every node.
set -euo pipefail
NPROC=$1
SCRIPT=$2
shift 2
exec "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --nproc_per_node="$NPROC" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${MASTER_PORT:-29500}" \
    "$SCRIPT" "$@" --launcher pytorch
