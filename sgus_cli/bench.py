"""The benchmark subcommands: ``sgus bench``, ``bench-startup``, ``bench-browse``,
``bench-generalisation``, ``bench-learning-curve`` and ``bench-doppler`` (each prints figures;
docs/CLI.md gives their JSON shapes)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sgus_cli.common import progress_bar
from sgus_core.errors import SgusError
from sgus_core.settings import Settings


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from sgus_core.bench.throughput import run_bench
    from sgus_core.inference.runtimes import RUNTIMES

    with progress_bar("bench", enabled=not args.json) as bar:
        result = run_bench(
            settings.models_dir,
            batch=args.batch,
            progress=bar,
            record=args.record,
            names=args.model or None,
            rounds=args.rounds,
        )
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"float32 peak: {result['peak_gflops']} GFLOP/s; default model {result['default_model']}")
    runtimes = tuple(rt for rt in RUNTIMES if rt != "auto")
    print(
        f"{'model':<16}{'fastest':<10}{'GFLOPs':>8}{'batch':>7}{'images/s':>10}{'of peak':>9}"
        + "".join(f"{rt:>10}" for rt in runtimes)
    )
    for row in result["models"]:
        others = "".join(
            f"{row['runtimes'][rt]:>10.1f}" if rt in row["runtimes"] else f"{'-':>10}"
            for rt in runtimes
        )
        print(
            f"{row['name']:<16}{row['runtime']:<10}{row['gflops']:>8.2f}{row['batch']:>7}"
            f"{row['images_per_s']:>10.1f}{row['fraction_of_peak']:>9.1%}{others}"
        )
        if "prompt_ms" in row:
            print(f"  box prompt on a 1280x872 frame: {row['prompt_ms']:.0f} ms (median)")
        for runtime, why in row["unavailable"].items():
            print(f"  {runtime} unavailable: {why}")
    if args.record:
        print(f"recorded each model's fastest runtime in its card in {settings.models_dir}")
    return 0


def cmd_bench_browse(args: argparse.Namespace, settings: Settings) -> int:
    from sgus_core.bench.browse import run_browse_bench

    result = run_browse_bench(
        n_images=args.images, work_dir=Path(args.work_dir) if args.work_dir else None
    )
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


def cmd_bench_doppler(args: argparse.Namespace, settings: Settings) -> int:
    from sgus_core.bench.doppler import QUALITIES, format_doppler_bench, run_doppler_bench

    qualities = (None, *args.jpeg) if args.jpeg else QUALITIES
    try:
        with progress_bar("frames", enabled=not args.json) as bar:
            result = run_doppler_bench(
                n_grey=args.grey, n_doppler=args.doppler, qualities=qualities, progress=bar
            )
    except ValueError as exc:
        raise SgusError(str(exc)) from exc
    print(json.dumps(result) if args.json else format_doppler_bench(result))
    return 0


def cmd_bench_generalisation(args: argparse.Namespace, settings: Settings) -> int:
    from sgus_core.bench import generalisation as gen

    families = tuple(args.families.split(",")) if args.families else tuple(gen.FAMILIES)
    for name in families:
        if name not in gen.FAMILIES:
            raise SgusError(f"unknown family {name!r}; choose from {', '.join(gen.FAMILIES)}")
    if len(families) < 2:
        raise SgusError("leave-one-family-out needs at least two families")
    recipe = gen.Recipe(
        base_filters=args.base_filters,
        prompted=not args.zero_shot_only,
        epochs=args.epochs,
        steps_per_epoch=args.steps,
        seed=args.seed,
        then_epochs=args.then_epochs,
        then_learning_rate=args.then_rate,
        then_remap=args.then_remap,
        then_random_conv=args.then_random_conv,
        zero_shot_flip=args.flip,
    )
    from sgus_core.inference.registry import read_card

    for name in args.model or []:
        read_card(settings.models_dir, name)  # a typo fails now, not after hours of training
    if args.make_default and not args.keep_as:
        raise SgusError("--make-default needs --keep-as NAME")
    work = Path(args.work_dir) if args.work_dir else settings.data_dir / "generalisation"
    log = (lambda _msg: None) if args.json else (lambda msg: print(msg, file=sys.stderr))
    result = gen.leave_one_family_out(
        recipe, work, families=families, n_test=args.test_frames, log=log
    )
    if args.model:
        result["shipped"] = gen.evaluate_shipped(
            args.model, settings.models_dir, families=families, n_test=args.test_frames
        )
    gen.write_json(result, work / "result.json")
    if args.keep_as:
        gen.keep_model(result, settings.models_dir, args.keep_as, make_default=args.make_default)
    if args.json:
        print(json.dumps(result))
        return 0
    print(gen.format_table(result))
    for model, rows in result.get("shipped", {}).items():
        print(f"shipped {model}: " + "; ".join(
            f"{fam} {row.get('zero_shot', float('nan')):.3f}" for fam, row in rows.items()))  # fmt: skip
    if args.keep_as:
        print(f"kept the network trained on every family as {settings.models_dir / args.keep_as}")
    return 0


def cmd_bench_startup(args: argparse.Namespace, settings: Settings) -> int:
    from sgus_core.bench.startup import run_startup_bench

    with progress_bar("cold starts", enabled=not args.json) as bar:
        result = run_startup_bench(settings.models_dir, runs=args.runs, progress=bar)
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"sgus predict, one {result['frame']} frame, fresh process, {result['runs']} runs: "
        f"median {result['seconds_median']:.2f} s (max {result['seconds_max']:.2f} s), "
        f"peak memory median {result['peak_mb_median']:.0f} MB (max {result['peak_mb_max']:.0f} MB)"
    )
    return 0


def cmd_bench_learning_curve(args: argparse.Namespace, settings: Settings) -> int:
    from sgus_core.bench import learning_curve as lc
    from sgus_core.synthesis.families import FAMILIES

    families = tuple(args.families.split(",")) if args.families else tuple(FAMILIES)
    for name in families:
        if name not in FAMILIES:
            raise SgusError(f"unknown family {name!r}; choose from {', '.join(FAMILIES)}")
    try:
        sizes = tuple(int(v) for v in args.sizes.split(","))
    except ValueError:
        raise SgusError(f"--sizes takes numbers separated by commas, not {args.sizes!r}") from None
    if (args.keep_grader_as or args.make_default) and not args.grader_lofo:
        raise SgusError("--keep-grader-as and --make-default go with --grader-lofo")
    if args.make_default and not args.keep_grader_as:
        raise SgusError("--make-default needs --keep-grader-as NAME")
    if args.keep_grader_as and (settings.models_dir / f"{args.keep_grader_as}.json").exists():
        raise SgusError(f"A model named {args.keep_grader_as!r} exists already.")
    segmenter = Path(args.segmenter) if args.segmenter else None
    if args.start:
        from sgus_core.inference.registry import read_card

        read_card(settings.models_dir, args.start)  # a typo is one line
    for name in families:  # a missing network fails now, not after an hour of training
        if segmenter is None:
            lc.held_out_segmenter(settings.models_dir, name, args.start)
    log = (lambda _msg: None) if args.json else (lambda msg: print(msg, file=sys.stderr))
    quiet = (lambda _msg: None) if args.json else (
        lambda msg: None if "epoch" in msg else print(msg, file=sys.stderr)
    )  # fmt: skip
    result: dict = {"curves": [], "graders": []}
    for name in families:
        if args.curve:
            curve = lc.learning_curve(
                name, settings.models_dir, sizes=sizes, n_test=args.test_frames,
                epochs=args.epochs, segmenter=segmenter, start=args.start, seed=args.seed,
                log=quiet,
            )  # fmt: skip
            result["curves"].append(curve)
            if not args.json:
                print(lc.format_curve(curve), flush=True)
        if args.grader_frames:
            grader = lc.grader_benchmark(
                name, settings.models_dir, n=args.grader_frames, folds=args.folds,
                epochs=args.grader_epochs, segmenter=segmenter, start=args.start, masks=args.masks,
                seed=args.seed, log=log,
            )  # fmt: skip
            result["graders"].append(grader)
            if not args.json:
                print(lc.format_grader(grader), flush=True)
    if args.grader_lofo:
        lofo = lc.grader_generalisation(
            settings.models_dir, keep_as=args.keep_grader_as, make_default=args.make_default,
            start=args.start, log=log,
        )  # fmt: skip
        result["grader_generalisation"] = lofo
        if not args.json:
            print(lc.format_grader_generalisation(lofo), flush=True)
            if lofo["kept"]:
                print(f"kept the feature grader fitted on every family as {lofo['kept']}")
    if args.json:
        print(json.dumps(result))
    return 0
