"""Print the README's benchmark tables (markdown) from the JSON files in benchmarks/results/.

    python benchmarks/report.py
"""

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _load(name):
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def _au(value):
    return ", ".join(f"{k} {v}" for k, v in value.items())


def family_table(res):
    """The classic-family table (benchmarks/vae_family.py)."""
    lines = [f"Setup: {res['setup']}.", "",
             "| preset | test log p(x) | ELBO | KL | active units | PSIS k̂ mean | k̂ > 0.7 | s / epoch |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in res["families"].items():
        lines.append(f"| `{name}` | {r['test_log_likelihood']:.2f} | {r['test_elbo']:.2f} | {r['test_kl']:.2f} | "
                     f"{_au(r['active_units'])} | {r['psis_khat_mean']:.2f} | {r['psis_khat_above_0.7']:.0%} | "
                     f"{r['seconds_per_epoch']:.1f} |")
    return "\n".join(lines)


def vampprior_table(res):
    """Table 1 rows (benchmarks/vampprior.py) with the paper's numbers beside ours."""
    lines = [f"Setup: {res['setup']}.", "",
             "| configuration | test log p(x) (ours) | paper | ELBO | active units | epochs (best) | s / epoch |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in res["configs"].items():
        paper = r.get("paper_test_log_likelihood")
        lines.append(f"| {name} | {r['test_log_likelihood']:.2f} | {paper if paper is not None else '–'} | "
                     f"{r['test_elbo']:.2f} | {_au(r['active_units'])} | {r['epochs']} ({r['best_epoch']}) | "
                     f"{r['seconds_per_epoch']:.1f} |")
    return "\n".join(lines)


def main():
    speed = _load("speed.json")
    if speed:
        print(f"speed: pyrozoo/plain = {speed['ratio_pyrozoo_over_plain']}, Pyro SVI/plain = "
              f"{speed['ratio_pyro_svi_over_plain']} ({speed['ms_per_step']})\n")
    family = _load("vae_family.json")
    if family:
        print(family_table(family) + "\n")
    for name in sorted(RESULTS.glob("vampprior-*.json")):
        print(f"### {name.stem}\n\n" + vampprior_table(json.loads(name.read_text())) + "\n")


if __name__ == "__main__":
    main()
