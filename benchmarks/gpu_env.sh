# Sourced by the GPU scripts: makes pyrozoo importable on a bare GPU machine without internet.
# pyrozoo runs from this checkout (PYTHONPATH); its dependencies that the machine lacks (pyro-ppl,
# pyro-api, arviz, h5netcdf, xarray-einstats, platformdirs on the lent H200s) travel as wheels in
# .whl/, prepared on a machine with the package index:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux2014_x86_64 -d .whl pyro-ppl==1.9.2 pyro-api==0.1.2 arviz==0.23.4 h5netcdf==1.8.2 \
#     xarray-einstats==0.9.1 platformdirs
# and MNIST in torchvision's raw layout under $PYROZOO_DATA (default ./.gpudata).
export MPLBACKEND=Agg PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYROZOO_DATA="${PYROZOO_DATA:-$PWD/.gpudata}"
if ! python3 -c "import pyro, arviz" 2>/dev/null; then
  if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="$PYTHONPATH:/tmp/site"
  else
    python3 -m pip install -q -e ".[test]" 2>&1 | tail -2
  fi
fi
