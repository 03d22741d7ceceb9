"""Re-execute the tutorials in full mode and store them with their outputs.

    python scripts/run_tutorials.py                          # every notebook in tutorials/
    python scripts/run_tutorials.py tutorials/03_vampprior.ipynb
    OMP_NUM_THREADS=1 nice -n 10 python scripts/run_tutorials.py ...   # on a shared machine

Each notebook runs in a fresh kernel with ``PYROZOO_FAST`` unset (the tests run them with
``PYROZOO_FAST=1`` and never write them back), with its folder as the working directory. Figures
are PNG at the modest resolution of ``scripts/tutorials.mplrc`` so that a stored notebook stays
small; a notebook larger than ``--max-mb`` is refused. The executed notebook replaces the stored
one only when every cell ran without an error (it is written to a temporary name and renamed).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MPLRC = Path(__file__).resolve().parent / "tutorials.mplrc"


def kernel_env() -> dict:
    """The environment of the notebook kernels: full mode, inline PNG figures at the stored DPI."""
    env = dict(os.environ)
    env.pop("PYROZOO_FAST", None)
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    env["MATPLOTLIBRC"] = str(MPLRC)
    # tqdm.auto warns when ipywidgets is missing and falls back to a text bar; the stored notebook
    # shows the text bar without that warning about the machine that executed it
    env["PYTHONWARNINGS"] = ",".join(filter(None, [env.get("PYTHONWARNINGS"), "ignore:IProgress not found"]))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def image_count(nb) -> int:
    """Number of PNG images among the outputs of notebook ``nb``."""
    return sum("image/png" in out.get("data", {}) for cell in nb.cells if cell.cell_type == "code"
               for out in cell.get("outputs", []))


def tidy_streams(nb) -> None:
    """Merge consecutive stream outputs of a cell and keep what a terminal shows of each line
    (the text after its last carriage return), so a progress bar is stored as its final state."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        merged = []
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and merged and merged[-1].output_type == "stream" \
                    and merged[-1].name == out.name:
                merged[-1].text += out.text
            else:
                merged.append(out)
        for out in merged:
            if out.output_type == "stream":
                out.text = "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in out.text.split("\n"))
        cell.outputs = merged


def execute(path: Path, timeout: int, max_mb: float) -> None:
    """Execute ``path`` in full mode and store it with its outputs; raise ``RuntimeError`` on a
    failing cell or an oversized result (the stored notebook is then left as it was)."""
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                                     resources={"metadata": {"path": str(path.parent)}})
    env = kernel_env()
    start = time.perf_counter()
    try:
        client.execute(env=env)
    except nbclient.exceptions.CellExecutionError as err:
        raise RuntimeError(f"{path.name}: a cell failed; the stored notebook is unchanged\n{err}") from None
    seconds = time.perf_counter() - start
    tidy_streams(nb)
    text = nbformat.writes(nb) + "\n"
    size = len(text.encode())
    if size > max_mb * 2**20:
        raise RuntimeError(f"{path.name}: {size / 2**20:.2f} MB with outputs, over --max-mb {max_mb}; "
                           "make its figures smaller")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"{path.name}: {seconds / 60:.1f} min, {size / 1024:.0f} KiB, {image_count(nb)} figures",
          flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: all in tutorials/)")
    p.add_argument("--timeout", type=int, default=7200, help="seconds allowed per cell (default 7200)")
    p.add_argument("--max-mb", type=float, default=1.5, help="largest stored notebook in MB (default 1.5)")
    args = p.parse_args(argv)
    paths = [q.resolve() for q in args.notebooks] or sorted((ROOT / "tutorials").glob("*.ipynb"))
    for q in paths:
        if q.suffix != ".ipynb" or not q.is_file():
            p.error(f"not a notebook file: {q}")
    failed = 0
    for q in paths:
        try:
            execute(q, args.timeout, args.max_mb)
        except RuntimeError as err:
            print(err, file=sys.stderr, flush=True)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
