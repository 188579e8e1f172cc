#!/usr/bin/env bash
# The default model on a lent GPU in one device call, and the steps around it on this machine.
#
#   bash dan_core/recipes/device.sh prepare     # here: models/*.onnx|*.pt aside (the tree that travels is
#                                               #   at most 64 MiB), the xz device pack into .devicepack/ (ignored)
#   device run  command="bash dan_core/recipes/device.sh remote"  carry=[".devicepack"]  timeout_s=600
#   bash dan_core/recipes/device.sh restore     # here: the shipped model files back into models/
#   bash dan_core/recipes/device.sh join DIR    # here: join the pieces the call returned (DIR = its files_at),
#                                               #   check the sha256, export the ONNX file, score it on PublicTest
#
# The device image has torch, numpy, tqdm, onnx and a CPU-only onnxruntime and nothing can be
# installed there, so the remote step runs from the source tree (PYTHONPATH=.) with no install.
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${SHARED:-../shared/data/fer2013}
ASIDE=${ASIDE:-../dan-fer-models-aside}
PY=${PY:-.venv/bin/python}

case "${1:-}" in
  prepare)
    mkdir -p .devicepack "$ASIDE"
    grep -qx '/.devicepack/' .git/info/exclude 2>/dev/null || echo '/.devicepack/' >> .git/info/exclude
    cp "$SHARED/fer2013_device_pack.npz.xz" "$SHARED/ferplus_votes.csv" .devicepack/
    for f in models/*.onnx models/*.pt; do [ -e "$f" ] && mv "$f" "$ASIDE/"; done
    du -sh --exclude=.git --exclude=.venv --exclude=runs . ;;
  remote)
    export PYTHONPATH=. PYTHONUNBUFFERED=1
    nvidia-smi -L || true
    python3 -c "import torch, onnx, onnxruntime; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
    python3 -m dan_core.recipes.train_default --data .devicepack --out /tmp/default --pack "$OUT" ;;
  restore)
    for f in "$ASIDE"/*; do [ -e "$f" ] && mv "$f" models/; done
    git status --short models ;;
  join)
    dir=${2:?usage: device.sh join DIR}
    out=runs/device_default
    mkdir -p "$out"
    cat "$dir"/dan_ferplus_112.pt.part* > "$out/dan_ferplus_112.pt"
    (cd "$out" && sha256sum -c "$dir/SHA256SUMS")
    cp "$dir"/summary.json "$dir"/metrics.jsonl "$dir"/confusion.png "$out/"
    $PY -m dan_core export "$out/dan_ferplus_112.pt" --out "$out/dan_ferplus_112.onnx" --half
    $PY -m dan_core eval --model "$out/dan_ferplus_112.onnx" --dataset ferplus --data "$SHARED" --split val ;;
  *)
    sed -n '2,14p' "$0"; exit 2 ;;
esac
