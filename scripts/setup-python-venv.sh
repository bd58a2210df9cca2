#!/usr/bin/env bash
# Creates <source>/.venv with the real clients our tests check files against:
# tensorboard (event files), safetensors (checkpoints), numpy, and Pillow (the PNG and
# JPEG files of the image-folder tests), onnx and onnxruntime (ONNX export), keras with
# jax[cpu] (the .keras export and import tests: Keras 3 on its JAX CPU backend). The product never
# needs Python; only the tests in tests/cli do. Re-running is cheap: an existing venv
# that already imports every package is left alone.
set -euo pipefail

src_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${DT_VENV:-$src_dir/.venv}"
packages=(tensorboard safetensors numpy pillow onnx onnxruntime keras "jax[cpu]")
modules="tensorboard, safetensors, numpy, PIL, onnx, onnxruntime, keras, jax"

if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c "import $modules" 2>/dev/null; then
  echo "setup-python-venv: $venv is ready"
  exit 0
fi

# Prefer the python3 on PATH; fall back to Debian's if that one cannot make a venv.
made=0
for py in python3 /usr/bin/python3; do
  if command -v "$py" >/dev/null 2>&1 && "$py" -m venv "$venv" 2>/dev/null; then
    made=1
    break
  fi
  rm -rf "$venv"
done
if [[ $made -ne 1 ]]; then
  echo "setup-python-venv: could not create $venv with python3 -m venv" >&2
  exit 1
fi

"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "${packages[@]}"
# Keras is checked on the backend the tests use (it would look for TensorFlow otherwise).
KERAS_BACKEND=jax "$venv/bin/python" -c "import $modules; print('setup-python-venv: ready:', tensorboard.__version__, safetensors.__version__, numpy.__version__)"
