#!/usr/bin/env bash
# Correctness of the CUDA paths on a GPU machine (no timings): the test suite with CUDA visible,
# fp16 (grad scaler) and bf16 training through the CLI with exact resume, translation and export
# on the GPU. Run from the repository root; writes logs under ${OUT:-/tmp/gtx-gpu-check}.
#
#   PYTHON=python3 bash benchmarks/gpu_check.sh
#
# Assumes torch with CUDA, onnx, onnxscript, onnxruntime, numpy, pillow and typer are installed;
# the project itself is installed here into a private target folder (no network needed).
set -uo pipefail
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/gtx-gpu-check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
site=$(mktemp -d)
# Wheels the image lacks (e.g. tomli-w) may be dropped into .gpu/ beside the repository.
if ls .gpu/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --target "$site" .gpu/*.whl || exit 1
fi
$PY -m pip install -q --no-index --no-deps --no-build-isolation --target "$site" . \
  ./examples/gantransfer-pix2pix || exit 1
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$site/bin:$PATH"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch, onnxruntime as o; print('torch', torch.__version__, torch.cuda.get_device_name(), 'ort', o.__version__, o.get_available_providers())"

status=0
# step / step_logged: a failed step sets status=1 (kept in this shell, not lost in a pipeline).
. "$(dirname "$0")/gpu_check_lib.sh"

# 1. The whole suite, with CUDA visible ("auto" devices now mean cuda).
step_logged "$OUT/pytest.log" 25 $PY -m pytest -q -p no:cacheprovider -n 8 --timeout 300 tests \
  examples/gantransfer-pix2pix/tests --deselect tests/cli/test_cli_docs.py::test_cli_reference_is_current

# 2. Mixed-precision training on the GPU, then exact resume.
run=$(mktemp -d)
step $PY -c "from gantransfer.data.demo import make_two_domain as m; m('$run/data', n_train=16, n_test=4, size=64, seed=0)"
for p in fp16 bf16 auto; do
  step gtx train cyclegan --data "$run/data" -o "$run/$p" --device cuda --precision "$p" \
    --steps 20 --set crop_size=64 --set load_size=64 --set ngf=16 --set checkpoint_every=10 --progress log
  step gtx train cyclegan --data "$run/data" -o "$run/$p" --resume auto --steps 30 --progress log
done
step gtx translate "$run/fp16" "$run/data/testA" -o "$run/out" --device cuda
step gtx export "$run/bf16" --onnx "$run/g.onnx"
step gtx export "$run/bf16" --onnx "$run/g16.onnx" --precision fp16
cp -r "$run/fp16/metrics.jsonl" "$OUT/fp16_metrics.jsonl" 2>/dev/null
echo "gpu_check status: $status"
exit $status
