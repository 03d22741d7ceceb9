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


def _table(setup, header, rows):
    """A markdown table under its setup line: ``header`` and each row are lists of cells."""
    lines = [f"Setup: {setup}.", "", "| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def family_table(res):
    """The classic-family table (benchmarks/vae_family.py)."""
    return _table(res["setup"], ["preset", "test log p(x)", "ELBO", "KL", "active units", "PSIS k̂ mean", "k̂ > 0.7",
                                 "s / epoch"],
                  [[f"`{name}`", f"{r['test_log_likelihood']:.2f}", f"{r['test_elbo']:.2f}", f"{r['test_kl']:.2f}",
                    _au(r["active_units"]), f"{r['psis_khat_mean']:.2f}", f"{r['psis_khat_above_0.7']:.0%}",
                    f"{r['seconds_per_epoch']:.1f}"] for name, r in res["families"].items()])


def vampprior_table(res):
    """Table 1 rows (benchmarks/vampprior.py) with the paper's numbers beside ours; "warm-up" says whether β rose
    per step (rows run before the presets took the authors' per-epoch warm-up, He init of weights only and
    bounded Bernoulli probabilities) or per epoch (with all three)."""
    return _table(res["setup"], ["configuration", "test log p(x) (ours)", "paper", "ELBO", "active units",
                                 "epochs (best)", "s / epoch", "warm-up", "device"],
                  [[name, f"{r['test_log_likelihood']:.2f}", r.get("paper_test_log_likelihood") or "–",
                    f"{r['test_elbo']:.2f}", _au(r["active_units"]), f"{r['epochs']} ({r['best_epoch']})",
                    f"{r['seconds_per_epoch']:.1f}", "per epoch" if r.get("kl_schedule") == "epochs" else "per step",
                    r.get("device", "cpu")] for name, r in res["configs"].items()])


def rvae_table(res):
    """Tables 1-3 and 6 of the R-VAE paper (benchmarks/rvae.py) with the paper's numbers beside ours."""
    lines = [f"Setup: {res['setup']}.", "",
             "| data, d | model | l² (rvae), ζ | −ELBO (ours) | Rec | KL | paper −ELBO / Rec / KL | F1 avg | "
             "s / epoch (phase 1 + 2) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    def order(item):  # by data set, latent size, then model (rvae first)
        data, model, d = item[0].split("/")[:3]
        return data != "mnist", int(d[1:]), model != "rvae", model, item[0]

    for key, entry in sorted(res["runs"].items(), key=order):
        data, model, d = key.split("/")[:3]
        s = entry.get("summary")
        if not s:
            continue
        first = next(iter(entry["seeds"].values()))
        # rows written before the runs recorded them: the local l² and ζ = 1e-3 of that code
        distance = first.get("distance", "local" if model == "rvae" else None) or "–"
        zeta = first.get("min_precision", 1e-3)
        n = len(entry["seeds"])
        pm = lambda v: f"{v[0]:.2f}" + (f" ± {v[1]:.2f}" if n > 1 else "")  # noqa: E731
        paper = entry.get("paper")
        paper = f"{paper['neg_elbo']} / {paper['rec']} / {paper['kl']}" if paper else "–"
        lines.append(f"| {data}, {d[1:]} | `{model}` | {distance}, {zeta:.0e} | {pm(s['neg_elbo'])} | {pm(s['rec'])} | "
                     f"{pm(s['kl'])} | {paper} | "
                     f"{s['f1_average'][0]:.3f} | {s['seconds_per_epoch_phase1'][0]:.1f} + "
                     f"{s['seconds_per_epoch_phase2'][0]:.1f} |")
    ratios = res.get("speed_ratio", {})
    if ratios:
        lines += ["", "| data, d | R-VAE / VAE time per epoch, phase 2 | over the whole schedule | paper (GPU) |",
                  "| --- | --- | --- | --- |"]
        def ratio_order(key):  # the same order: data set, then latent size
            data, d = key.split("/d")[:2]
            return data != "mnist", int(d.split("/")[0]), key

        for key, r in sorted(ratios.items(), key=lambda item: ratio_order(item[0])):
            paper = f"{r['paper_gpu']:.1f}" if r.get("paper_gpu") else "–"
            lines.append(f"| {key.replace('/d', ', ')} | {r['phase2']:.1f} | {r['schedule']:.1f} | {paper} |")
    return "\n".join(lines)


def sintrovae_table(res):
    """Table 1 of the Soft-IntroVAE paper (benchmarks/sintrovae_2d.py): ours (mean ± std over seeds, and each
    seed's value in parentheses) beside the paper's mean ± std over its five seeds."""
    lines = [f"Setup: {res['setup']}.", "",
             "| data set | configuration | iterations (warm-up; lr ×0.1 at) | seeds | gnELBO ×1e7 (ours / paper) | "
             "KL (ours / paper) | JSD (ours / paper) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in res["table"]:
        cells = []
        for k in ("gnelbo_e7", "kl", "jsd"):
            paper = r.get("paper", {}).get(k)
            ours = f"{r[k][0]:.2f}" + (f" ± {r[k][1]:.2f}" if r[k][1] is not None else "")
            each = r.get("per_seed", {}).get(k, [])
            if len(each) > 1:
                ours += " (" + ", ".join(f"{v:.2f}" for v in each) + ")"
            cells.append(f"{ours} / " + (f"{paper[0]} ± {paper[1]}" if paper else "–"))
        steps = ", ".join(str(m) for m in r.get("milestones", []))
        seeds = ", ".join(str(v) for v in r["seeds"])
        lines.append(f"| {r['dataset']} | {r['config']} | {r['iterations']} ({r.get('warmup', '?')}; {steps}) | "
                     f"{seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def stein_table(res):
    """The Stein-hyperprior comparison and ablations (benchmarks/stein_hyperprior.py), per data set."""
    lines = [f"Setup: {res['setup']}.", "",
             "| data set | configuration | test log p(x) | ELBO | KL | active units | min \\|a_k − a_l\\| | PSIS k̂ mean | "
             "epochs (best) | s / epoch |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for data, configs in res["runs"].items():
        for name, r in configs.items():
            dist = r.get("q_m_min_pairwise_distance")
            lines.append(f"| {data} | {name} | {r['test_log_likelihood']:.2f} | {r['test_elbo']:.2f} | {r['test_kl']:.2f} | "
                         f"{_au(r['active_units'])} | {f'{dist:.3f}' if dist is not None else '–'} | "
                         f"{r['psis_khat_mean']:.2f} | {r['epochs']} ({r['best_epoch']}) | {r['seconds_per_epoch']:.1f} |")
    return "\n".join(lines)


def _ratio(rows):
    """`` (stein-m5 step ×r)`` for the ``@time`` jobs: the step-time ratio they measured side by side."""
    ratios = [r["time_ratio"] for r in rows if r.get("time_ratio")]
    return f" (stein-m5 step ×{', '.join(f'{x:.2f}' for x in ratios)})" if ratios else ""


def stein_compute_table(res):
    """The Stein hyperprior against equal-compute baselines (benchmarks/stein_hyperprior.py, entries
    ``data/config/sSEED``): the mean over seeds with each seed's value in parentheses."""
    groups = {}
    for key, r in res["runs"].items():
        data, config, _ = key.split("/")
        groups.setdefault((data, config), []).append(r)

    def cell(rows, name, fmt="{:.2f}"):
        values = [r.get(name) for r in rows]
        if any(v is None for v in values):
            return "–"
        text = fmt.format(sum(values) / len(values))
        return text + (" (" + ", ".join(fmt.format(v) for v in values) + ")" if len(values) > 1 else "")

    lines = [f"Setup: {res['setup']}.", "",
             "| data set | configuration | seeds | test log p(x) | ELBO | active units | min \\|a_k − a_l\\| | "
             "in scales | charts: consistency / AMI | repulsion / attraction | epochs | median s / epoch | "
             "training min |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for (data, config), rows in groups.items():
        rows = sorted(rows, key=lambda r: r["seed"])
        au = " / ".join(_au(r["active_units"]) for r in rows)
        charts = "–" if rows[0].get("chart_ami") is None else \
            f"{cell(rows, 'chart_consistency')} / {cell(rows, 'chart_ami', '{:.3f}')}"
        for r in rows:
            r["training_minutes"] = r["training_seconds"] / 60
        lines.append(f"| {data} | {config} | {', '.join(str(r['seed']) for r in rows)} | "
                     f"{cell(rows, 'test_log_likelihood')} | {cell(rows, 'test_elbo')} | {au} | "
                     f"{cell(rows, 'q_m_min_pairwise_distance', '{:.3f}')} | "
                     f"{cell(rows, 'q_m_min_distance_in_scales', '{:.1f}')} | {charts} | "
                     f"{cell(rows, 'final_mean_force_ratio', '{:.2g}')} | "
                     f"{' / '.join(str(r['epochs']) for r in rows)}{_ratio(rows)} | "
                     f"{cell(rows, 'seconds_per_epoch', '{:.1f}')} | "
                     f"{cell(rows, 'training_minutes', '{:.0f}')} |")
    return "\n".join(lines)


SPEED_ROWS = {
    "vae": ("`vae` ELBO step (MLP 784-300-300-40)", "the same network, analytic KL"),
    "vampprior": ("`vampprior` step (gated MLPs, K = 500)", "gated VAE, VampPrior as two matrix products"),
    "hvae": ("`hvae-vampprior` step (two latent levels)", "one-level gated VAE step (context)"),
}


def speed_table(res):
    """Training-step times and log-likelihood throughput of ``speed.json`` (benchmarks/speed.py): pyrozoo
    against hand-written PyTorch, measured interleaved in one process, with the targets; where the run timed
    the hand-written code with pyrozoo's kernels too, their ratio is the "same kernels" column."""
    ms, ratios, targets = res["ms_per_step"], res["ratios"], res.get("targets", {})
    same = res.get("ratios_same_kernels", {})
    rows = []
    for group, (what, plain) in SPEED_ROWS.items():
        if group in ms:
            target = targets.get(group)
            rows.append(f"| {what} | {ms[group]['pyrozoo']:.2f} ms | {plain}: {ms[group]['plain_pytorch']:.2f} ms | "
                        f"**{ratios[group]:.2f}×** | {'%.2f×' % same[group] if group in same else '–'} | "
                        f"{'≤ %.2f×' % target if target else '–'} |")
    if "pyro_svi_trace_elbo" in ms.get("vae", {}):
        rows.append(f"| Pyro `SVI` + `Trace_ELBO` on the `vae` preset's model/guide (context) | "
                    f"{ms['vae']['pyro_svi_trace_elbo']:.2f} ms | the same network: {ms['vae']['plain_pytorch']:.2f} ms | "
                    f"{res['ratio_pyro_svi_over_plain']:.2f}× | – | – |")
    pps = res["log_likelihood_points_per_second"]
    target = targets.get("log_likelihood_throughput_ratio")
    same_ll = res.get("log_likelihood_throughput_ratio_same_kernels")
    rows.append(f"| importance-sampled log p(x), `vae` | {pps['pyrozoo']:.1f} points/s | a vectorised loop: "
                f"{pps['plain_pytorch']:.1f} points/s | **{res['log_likelihood_throughput_ratio']:.2f}×** "
                f"(throughput) | {'%.2f×' % same_ll if same_ll else '–'} | {'≥ %.2f×' % target if target else '–'} |")
    return "\n".join([f"Setup: {res['setup']}; device {res['device']}, {res['threads']} thread(s), torch "
                      f"{res['torch']}, Pyro {res['pyro']}.", "",
                      "| what | pyrozoo | hand-written PyTorch | ratio | same kernels | target |",
                      "| --- | --- | --- | --- | --- | --- |", *rows])


def scaling_table(res):
    """Samples per second of data-parallel training (``scaling.json``, benchmarks/scaling.py)."""
    lines = ["| preset | batch per process | steps / epoch | device | processes | threads each | samples / s | "
             "efficiency |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for key, r in res["runs"].items():
        preset, batch, device, procs = key.split("/")
        lines.append(f"| {preset} | {batch[1:]} | {r['steps_per_epoch']} | {device} | {procs[1:]} | "
                     f"{r['threads_per_process']} | {r['samples_per_second']:.0f} | {r['efficiency']:.2f} |")
    machines = sorted({r["machine"] for r in res["runs"].values()})
    return "\n".join([f"Setup: {res['setup']}; {'; '.join(machines)}.", "", *lines])


def presets_table(res):
    """Every preset's one-epoch digits run with its default evaluation (``presets_digits.json``,
    benchmarks/presets_digits.py)."""
    lines = ["| preset | data | training s | total s (evaluation included) | within target |",
             "| --- | --- | --- | --- | --- |"]
    for name, r in res["runs"].items():
        lines.append(f"| {name} | {r['dataset']} | {r['train_seconds']:.1f} | {r['total_seconds']:.1f} | "
                     f"{'yes' if r['within_target'] else '**no**'} |")
    floor = res.get("floors")
    if floor:
        rates = floor["gflops_per_second"]
        lines += ["", f"The arithmetic of the S = 5000 log-likelihood on the 300 test digits, against the rates this "
                      f"machine reaches by hand ({floor['threads']} thread(s): a 3×3 convolution of 64 maps at 8 × 8 "
                      f"{rates['conv3x3_64maps_8x8']:.0f} GFLOP/s, a 2048² matrix product {rates['matmul_2048']:.0f} "
                      "GFLOP/s):", "",
                  "| preset | FLOPs per sample and point | FLOPs in all | seconds at the convolution's rate |",
                  "| --- | --- | --- | --- |"]
        for name, r in floor["presets"].items():
            lines.append(f"| {name} | {r['flops_per_sample_and_point']:.3g} | {r['flops']:.3g} | "
                         f"{r['floor_seconds_at_conv_rate']:.0f} |")
    return "\n".join([f"Setup: {res['setup']}; target {res['target_seconds']:.0f} s per preset.", "", *lines])


def autocast_table(res):
    """Training-step times in float32 and under bf16 autocast (``autocast.json``, benchmarks/autocast.py)."""
    lines = ["| preset | data, batch | float32 ms | bf16 ms | speed-up | relative loss difference |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, r in res["models"].items():
        lines.append(f"| {name} | {r['dataset']}, {r['batch_size']} | {r['ms_per_step']['float32']:.1f} | "
                     f"{r['ms_per_step']['bf16']:.1f} | **{r['speedup']:.2f}×** | {r['loss_relative_difference']:.1e} |")
    return "\n".join([f"Setup: {res['setup']}; device {res['device']}, {res['threads']} thread(s), torch "
                      f"{res['torch']}.", "", *lines])


def rvae_speed_table(res):
    """R-VAE / VAE phase-two step times measured side by side (``rvae_speed.json``, benchmarks/rvae_speed.py)."""
    lines = ["| data, d | `vae-rbf` s / step | `rvae` geodesic s / step | `rvae` local s / step | R-VAE / VAE, geodesic "
             "| R-VAE / VAE, local | paper (GPU, per epoch) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for key, r in res["pairs"].items():
        dataset, d = key.split("/")
        t = r["median_step_seconds"]
        lines.append(f"| {dataset}, {d[1:]} | {t['vae-rbf']:.4f} | {t['rvae-geodesic']:.3f} | {t['rvae-local']:.4f} "
                     f"| **{r['ratio_geodesic']:.0f}×** | {r['ratio_local']:.1f}× | {r['paper_ratio']}× |")
    return "\n".join([f"Setup: {res['setup']}.", "", *lines])


def cuda_graph_table(res):
    """Seconds per epoch with eager and captured training steps (``cuda-graph.json``, benchmarks/cuda_graph.py)."""
    lines = ["| configuration | eager s / epoch | CUDA graph s / epoch | speed-up | validation ELBO after each epoch "
             "(eager / graph) |", "| --- | --- | --- | --- | --- |"]
    for name, r in res["presets"].items():
        eager, graph = r["eager"], r["graph"]
        elbos = "; ".join(f"{a:.3f} / {b:.3f}" for a, b in zip(eager["valid_elbo"], graph["valid_elbo"]))
        lines.append(f"| `{name}` | {eager['steady_seconds_per_epoch']:.2f} | "
                     f"{graph['steady_seconds_per_epoch']:.2f} | **{r['speed-up']:.1f}×** | {elbos} |")
    source = f" {res['source'][0].upper()}{res['source'][1:]}." if res.get("source") else ""
    return "\n".join([f"Setup: {res['setup']}.{source}", "", *lines])


def main():
    for name, table in (("speed", speed_table), ("scaling", scaling_table), ("presets_digits", presets_table),
                        ("autocast", autocast_table), ("cuda-graph", cuda_graph_table),
                        ("rvae_speed", rvae_speed_table)):
        res = _load(f"{name}.json")
        if res:
            print(f"### {name}\n\n" + table(res) + "\n")
    game = _load("intro_step.json")
    if game:
        print(f"intro step ms: {game['step_ms']}; mixture fwd+bwd ms: {game['mixture_fwd_bwd_ms']}, tight scale "
              f"{game.get('tight_mixture_fwd_bwd_ms')} "
              f"({game['device']}, {game['threads']} thread(s))\n")
    family = _load("vae_family.json")
    if family:
        print(family_table(family) + "\n")
    for name in ("rvae", "rvae_before_geodesic", "rvae-cuda"):
        rvae = _load(f"{name}.json")
        if rvae:
            print(f"### {name}\n\n" + rvae_table(rvae) + "\n")
    intro = _load("sintrovae_2d.json")
    if intro:
        print("### sintrovae_2d\n\n" + sintrovae_table(intro) + "\n")
    stein = _load("stein_hyperprior.json")
    if stein:
        print("### stein_hyperprior\n\n" + stein_table(stein) + "\n")
    compute = _load("stein_hyperprior_equal_compute.json")
    if compute:
        print("### stein_hyperprior_equal_compute\n\n" + stein_compute_table(compute) + "\n")
    for name in sorted(RESULTS.glob("vampprior-*.json")):
        print(f"### {name.stem}\n\n" + vampprior_table(json.loads(name.read_text())) + "\n")


if __name__ == "__main__":
    main()
