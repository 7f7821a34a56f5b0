#!/usr/bin/env bash
# GPU readiness in one call of at most 8 minutes, on a CUDA machine with PyTorch installed and no network:
#   1. installs vqtok into that Python without fetching anything (soundfile, which such images often lack,
#      from wheels in .whl/ when it is missing: see below);
#   2. runs the GPU checks (bench/gpu/test_cuda.py: shipped models code on the GPU as on the CPU, a bf16
#      training learns with float32 codebooks, a prior trains and samples, torchrun over NCCL);
#   3. times a short bf16 training of each default's recipe on the shipped samples, eager and compiled
#      (bench/bench_train.py --device cuda --compile): steps/s, examples/s, the loader's share of a step,
#      peak GPU memory, and the torch.compile speed-up;
#   4. times the input pipeline against the training step for 0/2/4/8 workers (bench/bench_loader.py).
#
#   bash bench/gpu_check.sh [OUT_DIR]        # logs go to OUT_DIR (default: gpu-check/)
#
# soundfile's wheels, fetched on a machine with network access, in the repository root:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl soundfile cffi pycparser
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu-check}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
py=python3

if ! $py -c "import soundfile" 2>/dev/null; then
  ls .whl/*.whl >/dev/null 2>&1 || { echo "soundfile is missing and there are no wheels in .whl/ (see the header)"; exit 2; }
  $py -m pip install -q --no-index --no-deps --no-compile --target /tmp/vqtok-site .whl/*.whl || exit 2
  export PYTHONPATH="/tmp/vqtok-site${PYTHONPATH:+:$PYTHONPATH}"
fi
$py -m pip install -q --no-index --no-deps --no-build-isolation -e . || exit 2
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
$py -c "import torch, vqtok; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'vqtok', vqtok.__version__)" \
  | tee -a "$out/gpu.txt"

status=0
echo "== GPU checks"
timeout 240 $py -m pytest bench/gpu -q -p no:cacheprovider 2>&1 | tee "$out/gpu-tests.log" || status=1

echo "== training speed, bf16 on the GPU: eager and compiled"
timeout 150 $py bench/bench_train.py --device cuda --on-samples --no-defaults --compile --steps 20 --warmup 5 \
  --recipes photo-8x speech-8k-voices mnist-vqvae --peak-tflops 790 2>&1 | tee "$out/train-speed.log" || status=1

echo "== input pipeline against the training step"
timeout 60 $py bench/bench_loader.py --device cuda --on-samples --workers 0,2,4,8 2>&1 \
  | tee "$out/loader.log" || status=1
exit $status
