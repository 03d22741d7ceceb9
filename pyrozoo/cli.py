"""The ``pyrozoo`` command: argument parsing and printing over the public API (:mod:`pyrozoo.runs`).

    pyrozoo list
    pyrozoo train PRESET [run options] [--config FILE] [--out DIR] [--resume | --overwrite]
    pyrozoo train --config runs/X/config.yaml [run options]      # run X again; flags override the file
    pyrozoo evaluate RUN_DIR [--num-samples S] [--out DIR] [--inception-fid] [--quiet]
    pyrozoo sample RUN_DIR [-n N] [--seed S] [--out DIR]

The flags of ``pyrozoo train`` are generated from :data:`pyrozoo.runs.options.OPTIONS`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

from pyrozoo.runs.options import OPTIONS, check_value, choices

#: Exit statuses: bad input, a failed run (divergence, a failed write), Ctrl-C.
EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED = 2, 1, 130
_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message and exit status 2."""

    def error(self, message):
        sys.stderr.write(f"pyrozoo: error: {message}\n")
        sys.exit(EXIT_BAD_INPUT)


def _ints(flag):
    def parse(text):
        try:
            return [int(v) for v in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} takes comma-separated integers such as 300,300, "
                                             f"got {text!r}") from None
    return parse


def _number(kind, flag):
    def parse(text):
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} takes {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
    return parse


class _Names(tuple):
    """The choices of a comma-separated list flag: argparse checks each listed name against them."""

    def __contains__(self, value):
        return all(tuple.__contains__(self, v.strip()) for v in value.split(","))


def _names(option):
    """The value of a comma-separated list flag, checked (``"none"`` stays the text ``"none"``)."""
    def parse(text):
        try:
            check_value(option, text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        return text
    return parse


def _add_option(parser, option):
    names = list(option.flags) if option.flags else [option.flag]
    kw = {"dest": option.name, "default": None, "help": option.help}
    if option.kind == "bool":  # --flag / --no-flag: a preset may default to True
        parser.add_argument(*names, action=argparse.BooleanOptionalAction, **kw)
        return
    kw["metavar"] = option.metavar or {"int": "N", "float": "X", "path": "DIR", "ints": "A,B"}.get(option.kind, "NAME")
    if option.kind == "names":
        kw.update(type=_names(option), choices=_Names(choices(option)), metavar="|".join(choices(option)))
        parser.add_argument(*names, **kw)
        return
    if option.kind == "ints":
        kw["type"] = _ints(names[0])
    elif option.kind in ("int", "float"):
        kw["type"] = _number(int if option.kind == "int" else float, names[0])
    accepted = choices(option)
    if accepted:
        kw["choices"] = accepted
        if len(accepted) <= 5:
            kw["metavar"] = "|".join(accepted)
        else:
            kw["help"] += f" (one of {', '.join(accepted)})"
    parser.add_argument(*names, **kw)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``pyrozoo`` command."""
    from pyrozoo import zoo
    p = _Parser(prog="pyrozoo", description="A Pyro model zoo of VAEs with learned priors.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="list the presets")
    t = sub.add_parser("train", help="train a preset, evaluate it and write a run directory")
    t.add_argument("preset", nargs="?", choices=list(zoo.presets()), metavar="PRESET",
                   help="a preset (pyrozoo list); may be left out with --config")
    groups = {g: t.add_argument_group(title) for g, title in
              (("data", "data"), ("model", "model (each preset takes some)"), ("train", "training"),
               ("eval", "evaluation"), ("run", "run"))}
    for option in OPTIONS.values():
        _add_option(groups[option.group], option)
    run = groups["run"]
    run.add_argument("--config", metavar="FILE", help="a YAML or JSON run configuration (preset, dataset, options), "
                     "e.g. a run's config.yaml; flags given here override it")
    run.add_argument("--out", help="run directory (default runs/PRESET-DATASET, numbered when it exists)")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    mode.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out")
    mode.add_argument("--auto-resume", action="store_true",
                      help="continue the run in --out when it has a checkpoint, else start it (pre-emptible jobs)")
    e = sub.add_parser("evaluate", help="evaluate a run directory into RUN_DIR/evaluations/sS",
                       description="Evaluate a run directory into RUN_DIR/evaluations/sS (or --out). The "
                                   "log-likelihood keeps its finished batches there, so an evaluation that is "
                                   "killed and started again with the same settings continues where it stopped.")
    e.add_argument("run_dir")
    e.add_argument("--num-samples", type=_number(int, "--num-samples"), default=None,
                   help="importance samples S (default: the run's eval_samples)")
    e.add_argument("--num-points", type=_number(int, "--num-points"), default=None,
                   help="test points of the log-likelihood (default: the run's eval_points, else all)")
    e.add_argument("--out", help="folder for evaluation.json and figures (default RUN_DIR/evaluations/sS)")
    e.add_argument("--inception-fid", action="store_true", default=None,
                   help=OPTIONS["inception_fid"].help + " (default: the run's setting)")
    e.add_argument("--inception-weights", metavar="FILE", default=None, help=OPTIONS["inception_weights"].help)
    e.add_argument("--device", default="cpu")
    e.add_argument("--quiet", action="store_true")
    s = sub.add_parser("sample", help="draw samples from a trained run into RUN_DIR/samples/nN-seedS")
    s.add_argument("run_dir")
    s.add_argument("-n", type=_number(int, "-n"), default=64, help="number of samples (written in chunks)")
    s.add_argument("--seed", type=_number(int, "--seed"), default=0)
    s.add_argument("--out", help="folder for samples.npy and samples.png (default RUN_DIR/samples/nN-seedS)")
    return p


def _value_flags(parser) -> set:
    """Flags that take a value (so that a following negative number is read as that value)."""
    flags = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags |= _value_flags(sub)
        elif action.option_strings and action.nargs != 0:
            flags.update(action.option_strings)
    return flags


def _join_negative_numbers(argv, flags) -> list:
    """``--lr -1e-3`` -> ``--lr=-1e-3``: argparse would read ``-1e-3`` as an option."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in flags and i + 1 < len(argv) and _NUMBER.match(argv[i + 1]):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def _main_rank() -> bool:
    """Whether this process prints (rank 0 of a torchrun launch, or a single process)."""
    from pyrozoo.inference import distributed
    return distributed.context().main


def _train(args) -> int:
    import pyrozoo
    options = {name: getattr(args, name) for name in OPTIONS if getattr(args, name) is not None}
    resume = "auto" if args.auto_resume else args.resume
    run = pyrozoo.train(args.preset, out=args.out, config=args.config, resume=resume, overwrite=args.overwrite,
                        **options)
    if not run.config["options"]["quiet"] and _main_rank():
        s = run.summary
        print(f"run directory: {run.path}")
        shown = [f"{k} {s[k]:.4g}" for k in ("test_log_likelihood", "test_elbo", "gnelbo", "kl", "jsd",
                                              "classifier_fid_gen", "inception_fid_gen") if k in s]
        if "active_units" in s:
            shown.append(f"active units {s['active_units']}")
        print(", ".join(shown))
    return 0


def _evaluate(args) -> int:
    import pyrozoo
    run = pyrozoo.load(args.run_dir, device=args.device)
    report = run.evaluate(num_samples=args.num_samples, num_points=args.num_points, out=args.out, quiet=args.quiet,
                          inception_fid=args.inception_fid, inception_weights=args.inception_weights)
    if not _main_rank():
        return 0
    samples = args.num_samples or run.config["options"]["eval_samples"]
    where = args.out or os.path.join(args.run_dir, "evaluations", f"s{samples}")
    print(json.dumps(report, indent=2, default=str))
    print(f"written to {where}", file=sys.stderr)
    return 0


def _sample(args) -> int:
    import pyrozoo
    run = pyrozoo.load(args.run_dir)
    path = run.save_samples(args.n, out=args.out, seed=args.seed)
    print(path)
    return 0


def main(argv=None) -> int:
    """Entry point of the console script; returns the exit status."""
    os.environ.setdefault("MPLBACKEND", "Agg")  # figures go to files; no display needed
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(_join_negative_numbers(argv, _value_flags(parser)))
    except SystemExit as exit_:  # bad flags (status 2) or --help (0)
        return int(exit_.code or 0)
    from pyrozoo.inference import TrainingDiverged, WriteError
    try:
        if args.command == "list":
            from pyrozoo import zoo
            for name, desc in zoo.presets().items():
                print(f"{name:20s} {desc}")
            return 0
        return {"train": _train, "evaluate": _evaluate, "sample": _sample}[args.command](args)
    except KeyboardInterrupt:
        sys.stderr.write("\npyrozoo: interrupted; checkpoints written so far are intact (continue with --resume)\n")
        return EXIT_INTERRUPTED
    except TrainingDiverged as err:
        sys.stderr.write(f"pyrozoo: training diverged: {err}\n")
        return EXIT_FAILED
    except WriteError as err:
        sys.stderr.write(f"pyrozoo: error: {err}\n")
        return EXIT_FAILED
    except (ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as err:
        sys.stderr.write(f"pyrozoo: error: {err}\n")
        return EXIT_BAD_INPUT
    finally:
        from pyrozoo.inference import distributed
        distributed.teardown()  # under torchrun: close the group before the interpreter exits


def console():
    """Console-script wrapper that exits with :func:`main`'s status."""
    sys.exit(main())


if __name__ == "__main__":
    console()
