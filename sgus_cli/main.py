"""The ``sgus`` command: the command-line face of SGUS Studio (see docs/CLI.md for the contract).

Every subcommand has ``--help``, prints a one-line reason and exits non-zero on failure, and shows
a progress bar on long work when standard error is a terminal and ``--json`` is not given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from sgus_cli.bench import (
    cmd_bench,
    cmd_bench_browse,
    cmd_bench_doppler,
    cmd_bench_generalisation,
    cmd_bench_learning_curve,
    cmd_bench_startup,
)
from sgus_cli.common import StageBars, open_store, progress_bar
from sgus_cli.live import add_parsers as add_live_parsers
from sgus_core import __version__
from sgus_core.errors import SgusError, StoreError
from sgus_core.settings import Settings, load_settings

EXIT_FAILURE = 1


# ---------------------------------------------------------------- subcommands


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from sgus_core.transfer import import_folder

    with open_store(settings) as store, progress_bar("import") as progress:
        report = import_folder(
            store,
            Path(args.dir),
            labels_csv=Path(args.labels) if args.labels else None,
            dataset=args.dataset,
            rater=args.rater,
            max_pixels=settings.max_pixels,
            blank_outside_fov=args.blank,
            include_unlisted=args.all_files,
            progress=progress,
        )
    print(report.summary())
    for where, reason in report.skipped:
        print(f"  skipped {where}: {reason}")
    for where, reason in report.conflicts:
        print(f"  conflict {where}: {reason}")
    if report.labels_saved:
        print(f"labels saved for {report.labels_saved} images in dataset {report.dataset!r}")
    if report.metadata_updated:
        print(
            f"metadata updated for {report.metadata_updated} images "
            "(the old values are in the audit log)"
        )
    if report.left_out:
        print(
            f"left out {report.left_out} image files under DIR that the CSV does not name "
            "(--all-files imports them too)"
        )
    if report.mask_files:
        print(f"left out {report.mask_files} files in masks/ folders: masks, not frames")
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from sgus_core.study.visibility import reader_view
    from sgus_core.transfer import export_dataset

    with open_store(settings) as store, progress_bar("export") as progress:
        if args.reader is not None and store.get_rater(args.reader) is None:
            raise StoreError(f"No account named {args.reader!r}.")
        path = export_dataset(
            reader_view(store, args.reader),
            args.dataset,
            Path(args.out),
            fmt=args.format,
            rater=args.rater,
            progress=progress,
        )
    print(f"wrote {path}")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from sgus_core.demo import ensure_demo

    with open_store(settings) as store, progress_bar("demo data") as progress:
        summary = ensure_demo(store, settings, with_predictions=True, progress=progress)
    print(summary)
    if args.no_serve:
        return 0
    return _run_streamlit(settings, host="127.0.0.1", port=args.port, mode="demo")


def _run_streamlit(settings: Settings, *, host: str, port: int, mode: str) -> int:
    env = {**os.environ, "SGUS_APP_MODE": mode, "SGUS_DB_URL": settings.db_url}
    env["SGUS_DATA_DIR"] = str(settings.data_dir)
    env["SGUS_MODELS_DIR"] = str(settings.models_dir)
    cmd = [
        sys.executable,
        "-m",
        "sgus_ui.launch",
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    print(f"SGUS Studio on http://{host}:{port} (Ctrl+C stops it)", flush=True)
    sys.stderr.flush()
    # The server replaces this process (same PID): stopping `sgus demo` or `sgus serve` (Ctrl+C,
    # kill, a service manager) stops the server; a child process outlived a killed parent.
    os.execve(sys.executable, cmd, env)


def _parse_options(pairs: list[str] | None) -> dict | None:
    """``["growth_rate=4", "width=0.25"]`` -> ``{"growth_rate": 4, "width": 0.25}``."""
    if not pairs:
        return None
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SgusError(f"--option takes KEY=VALUE, not {pair!r}.")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    return options


def _input_size(text: str) -> tuple[int, int]:
    """``"96x128"`` -> (96, 128); a bad value is a one-line usage error."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not HEIGHTxWIDTH in pixels, e.g. 96x128")
    return int(parts[0]), int(parts[1])


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from sgus_core.training import training_device
    from sgus_core.training.from_store import train_from_store

    show = not args.json
    if show:
        print(f"training on {training_device()}", file=sys.stderr)
    with open_store(settings) as store, progress_bar("loading frames", enabled=show) as loading:
        bars = StageBars(enabled=show)
        try:
            card = train_from_store(
                store,
                settings,
                args.task,
                args.dataset,
                arch=args.arch,
                epochs=args.epochs,
                out=args.out,
                from_model=args.from_model,
                rater=args.rater,
                target=args.target,
                folds=args.folds,
                model_options=_parse_options(args.option),
                input_size=args.input_size,
                load_progress=loading,
                progress=bars,
            )
        finally:
            bars.close()
    if card.get("warning"):
        print(card["warning"], file=sys.stderr)
    if args.json:
        print(json.dumps(card))
        return 0
    print(f"trained {card['name']} ({card['architecture']}) on {card.get('dataset')}")
    cv = card.get("cross_validation") or {}
    if "folds" in cv:
        print(
            f"  {cv['folds']}-fold cross-validation by patient; the model is fitted on every frame"
        )
    for design, report in (cv.get("designs") or {}).items():
        chosen = " (kept)" if design == cv.get("chosen") else ""
        print(f"  {design}{chosen}: {_grade_summary(report)}")
    frame = cv.get("frame_statistics_baseline")
    if frame:
        ci = frame.get("kappa_ci95")
        interval = f" (95 % {ci[0]:.2f}-{ci[1]:.2f})" if ci else ""
        verdict = "beaten by the kept grader" if frame["beaten"] else "NOT beaten"
        print(
            f"  baseline, frame statistics (no mask): kappa {frame['kappa_quadratic']:.3f}"
            f"{interval}, accuracy {frame['accuracy']:.3f}; {verdict}"
        )
    for key, value in card.get("test_metrics", {}).items():
        if isinstance(value, int | float):
            print(f"  test {key}: {value:.4g}")
    print(f"wrote {settings.models_dir / card['name']} and its model card")
    return 0


def _grade_summary(report: dict) -> str:
    ci = report.get("kappa_ci95")
    interval = f" (95 % {ci[0]:.2f}-{ci[1]:.2f})" if ci else ""
    base = report.get("baseline", {})
    return (
        f"kappa {report['kappa_quadratic']:.3f}{interval}, accuracy {report['accuracy']:.3f}, "
        f"majority baseline accuracy {base.get('accuracy', 0):.3f}"
    )


def cmd_predict(args: argparse.Namespace, settings: Settings) -> int:
    import csv

    from sgus_core.inference import files as predict_files
    from sgus_core.inference import segment_frames
    from sgus_core.inference.pipeline import LOW_CONFIDENCE, segment_prompted
    from sgus_core.inference.prompts import read_prompts_csv
    from sgus_core.inference.registry import load_pipeline, load_prompted

    out = Path(args.out)
    skipped: list[tuple[str, str]] = []
    prompts = read_prompts_csv(Path(args.prompts)) if args.prompts else {}
    jobs = predict_files.collect_jobs(
        [Path(p) for p in args.paths], max_pixels=settings.max_pixels, skipped=skipped
    )
    if not jobs:
        raise SgusError("No readable image or video frame in the given paths.")
    prompted_jobs = {j.stem for j in jobs if j.video is None and j.source.name in prompts}
    segmenter, grader = load_pipeline(settings.models_dir, args.model)
    prompted = load_prompted(settings.models_dir, args.model) if prompted_jobs else None
    for name in sorted(set(prompts) - {j.source.name for j in jobs}):
        skipped.append((name, "has a prompt but is not among the inputs"))
    out.mkdir(parents=True, exist_ok=True)
    with_mm = any(job.frame.spacing_mm for job in jobs)
    columns = predict_files.csv_columns(with_mm)
    videos: dict[Path, list] = {}
    written = unsure = 0
    with (out / "predictions.csv").open("w", newline="") as handle, progress_bar("predict") as bar:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        batch = max(1, args.batch)
        for start in range(0, len(jobs), batch):
            chunk = jobs[start : start + batch]
            plain = [j for j in chunk if j.stem not in prompted_jobs]
            results = dict(
                zip(
                    (j.stem for j in plain),
                    segment_frames(segmenter, [j.frame for j in plain], grader=grader),
                    strict=True,
                )
            )
            for job in chunk:
                if job.stem in prompted_jobs and prompted is not None:
                    try:
                        prompt = prompts[job.source.name]
                        results[job.stem] = segment_prompted(
                            prompted, job.frame, prompt, grader=grader
                        )
                    except SgusError as exc:
                        skipped.append((str(job.source), str(exc)))
                        prompted_jobs.discard(job.stem)
                        continue
                prediction = results[job.stem]
                predict_files.write_outputs(out, job, prediction, writer)
                written += 1
                unsure += (
                    prediction.confidence_warning() is not None
                    or job.frame.unlike_ultrasound() is not None
                )
                if job.video is not None:
                    videos.setdefault(job.video, []).append(prediction.overlay)
            bar(min(start + batch, len(jobs)), len(jobs))
    for video, overlays in videos.items():
        predict_files.write_video(out / f"{video.stem}_overlay.mp4", overlays, video)
    with_prompt = f" ({len(prompted_jobs)} from prompts with {prompted.name})" if prompted else ""
    print(
        f"predicted {written} frames with {segmenter.name}{with_prompt}; "
        f"wrote {out / 'predictions.csv'}"
    )
    if unsure:
        print(
            f"  unsure of {unsure} of {written} frames (confidence below {LOW_CONFIDENCE:.2f}, "
            "no gland found, or no ultrasound image): check those outlines"
        )
    for where, reason in skipped:
        print(f"  skipped {where}: {reason}")
    return 0


def cmd_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    from sgus_core.inference.dataset import evaluation_models, grade_dataset, predict_dataset
    from sgus_core.inference.registry import dataset_default, default_model_names, load_pipeline
    from sgus_core.review.evaluation import evaluate_dataset

    model, grader = evaluation_models(settings.models_dir, args.model, args.grader)
    with open_store(settings) as store, progress_bar("predict", enabled=not args.json) as bar:
        name = load_pipeline(settings.models_dir, model, dataset=args.dataset)[0].name
        predict_dataset(store, args.dataset, settings.models_dir, model=name, progress=bar)
        grades = None
        if grader is not None:
            grades = grade_dataset(store, args.dataset, settings.models_dir, grader, name)
        else:
            grader = dataset_default(
                settings.models_dir, args.dataset, "grade"
            ) or default_model_names(settings.models_dir).get("grade")
        result = evaluate_dataset(
            store,
            args.dataset,
            name,
            reference=args.reference,
            predicted_grades=grades,
            grader=grader,
        )
    if args.json:
        print(json.dumps(result))
        return 0

    def fmt(value) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    graded_by = f" (grades: {result['grader']})" if result.get("grader") else ""
    print(
        f"{result['model']}{graded_by} vs {result['reference']} on {args.dataset}: n={result['n']}"
    )
    print(f"  IoU mean {fmt(result['iou_mean'])}, Dice mean {fmt(result['dice_mean'])}")
    print(
        f"  de Vita accuracy {fmt(result['grade_accuracy'])}, "
        f"quadratic kappa {fmt(result['kappa_quadratic'])}"
    )
    print("  AUC per grade " + ", ".join(fmt(a) for a in result["auc_per_grade"]))
    return 0


def cmd_phantoms(args: argparse.Namespace, settings: Settings) -> int:
    from sgus_core.synthesis.phantom import write_dataset

    with progress_bar("phantoms") as progress:
        path = write_dataset(Path(args.out), args.patients, args.first_seed, progress=progress)
    print(f"wrote {args.patients * 4} frames and {path}")
    return 0


def _read_password(prompt: str) -> str:
    """A password from the terminal (asked twice) or, when piped, the first line of stdin."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    import getpass

    first = getpass.getpass(prompt)
    if getpass.getpass("Again: ") != first:
        raise SgusError("The two passwords differ.")
    return first


def cmd_user(args: argparse.Namespace, settings: Settings) -> int:
    from sgus_core import auth

    with open_store(settings) as store:
        if args.action == "disable":
            auth.disable_user(store, args.name, actor="cli")
            print(f"disabled {args.name}")
            return 0
        if args.action == "enable":
            auth.enable_user(store, args.name, actor="cli")
            print(f"enabled {args.name}")
            return 0
        password = _read_password(f"Password for {args.name}: ")
        if args.action == "add":
            account = auth.add_user(store, args.name, args.role, password, actor="cli")
            print(f"added {account.name} ({account.role})")
        else:
            auth.set_password(store, args.name, password, actor="cli")
            print(f"password changed for {args.name}")
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    with open_store(settings) as store:
        if not any(r.role == "admin" and store.password_hash(r.name) for r in store.list_raters()):
            raise SgusError(
                "No admin account yet: create one with `sgus user add NAME --role admin`."
            )
    return _run_streamlit(settings, host=args.host, port=args.port, mode="serve")


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from sgus_core.transfer.backup import backup_store

    with open_store(settings) as store, progress_bar("backup") as progress:
        counts = backup_store(store, Path(args.out), progress=progress)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v))
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from sgus_core.transfer.backup import restore_store

    with open_store(settings) as store, progress_bar("restore") as progress:
        counts = restore_store(store, Path(args.file), progress=progress)
        fitted = sum(e.action == "fit" and e.actor == "restore" for e in store.audit_log())
    print(f"restored {sum(counts.values())} rows into {settings.db_url}")
    if fitted:
        print(f"fitted {fitted} text values (see the audit log)")
    return 0


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    """List stored rows that fail the checks new writes get; exit 1 while any is not superseded."""
    from sgus_core.check import check_store

    with open_store(settings) as store:
        report = check_store(store)
    if args.json:
        print(json.dumps(report.as_json()))
        return 0 if report.ok else EXIT_FAILURE
    print(
        f"checked {report.mask_versions} mask versions, {report.predictions} predictions and "
        f"{report.status_events} status changes"
    )
    for problem in report.problems:
        print(f"  {problem.line()}")
    if not report.problems:
        print("nothing wrong")
    elif report.ok:
        print(f"{len(report.problems)} problems, every one already superseded; nothing to do")
    else:
        print(
            f"{len(report.open_problems)} problems to supersede (of {len(report.problems)}); "
            "nothing was changed, and nothing is ever deleted: a newer version replaces a bad one"
        )
    return 0 if report.ok else EXIT_FAILURE


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The full ``sgus`` argument parser (every docs/CLI.md form)."""
    parser = argparse.ArgumentParser(
        prog="sgus",
        description="SGUS Studio: annotate, predict and review salivary gland ultrasonography.",
        epilog="Store: SGUS_DB_URL (default SQLite under data/); folders: SGUS_DATA_DIR, "
        "SGUS_MODELS_DIR.",
    )
    parser.add_argument("--version", action="version", version=f"sgus {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="create the demo dataset if missing and start the app on it")
    p.add_argument("--port", type=int, default=8501, help="port to serve on (default 8501)")
    p.add_argument("--no-serve", action="store_true", help="only build the demo data, then exit")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("import", help="add a folder of frames (and a labels CSV) to a dataset")
    p.add_argument("dir", metavar="DIR", help="folder of PNG, JPEG, BMP, TIFF or DICOM frames")
    p.add_argument("--labels", metavar="CSV", help="labels CSV (columns: see docs/CLI.md)")
    p.add_argument("--dataset", metavar="NAME", help="dataset name (default: DIR's name)")
    p.add_argument("--rater", metavar="NAME", help='rater of the CSV labels (default "imported")')
    p.add_argument(
        "--all-files",
        action="store_true",
        help="with --labels, also import the image files under DIR that the CSV does not name",
    )
    blank = p.add_mutually_exclusive_group()
    blank.add_argument(
        "--blank-outside-fov",
        dest="blank",
        action="store_const",
        const=True,
        help="blank burned-in text outside the field of view (default for DICOM frames)",
    )
    blank.add_argument(
        "--keep-outside-fov",
        dest="blank",
        action="store_const",
        const=False,
        help="keep every pixel, DICOM frames included",
    )
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("export", help="write a dataset's labels as csv, masks or COCO")
    p.add_argument("--dataset", metavar="NAME", required=True)
    p.add_argument("--out", metavar="DIR", required=True)
    p.add_argument("--format", choices=("csv", "masks", "coco"), default="masks")
    p.add_argument("--rater", metavar="NAME", help="whose labels (default: the only rater)")
    p.add_argument(
        "--as",
        dest="reader",
        metavar="NAME",
        help="export what NAME may see: her open blind rounds hide others' labels and the model",
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("predict", help="segment and grade images, folders or videos")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--out", metavar="DIR", required=True)
    p.add_argument("--model", metavar="NAME")
    p.add_argument("--batch", type=int, default=8, metavar="N")
    p.add_argument(
        "--prompts",
        metavar="CSV",
        help="boxes (and clicks) per image: columns image, x0, y0, x1, y1[, include, exclude]; "
        "those frames go to the prompted segmenter",
    )
    p.set_defaults(func=cmd_predict)

    add_live_parsers(sub)

    p = sub.add_parser("train", help="train or fine-tune a model on a dataset's labels")
    p.add_argument("task", choices=("segment", "grade"))
    p.add_argument("--dataset", metavar="NAME", required=True)
    p.add_argument("--arch", metavar="NAME")
    p.add_argument("--epochs", type=int, metavar="N")
    p.add_argument("--out", metavar="MODEL_NAME")
    p.add_argument("--from", dest="from_model", metavar="MODEL", help="fine-tune this model")
    p.add_argument("--rater", metavar="NAME", help="whose labels (default: the only rater)")
    p.add_argument("--target", choices=("devita", "omeract"), default="devita", help="grade models")
    p.add_argument(
        "--folds",
        type=int,
        metavar="K",
        help="patient-grouped K-fold cross-validation (default: 5 below 300 frames, else one "
        "split; 0: one split)",
    )
    p.add_argument(
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="architecture option, e.g. base_filters=8 or growth_rate=4 (repeatable)",
    )
    p.add_argument(
        "--input-size",
        type=_input_size,
        metavar="HxW",
        help="network input in pixels, e.g. 96x128 (default: the architecture's; "
        "segmenters need multiples of 32)",
    )
    p.add_argument("--json", action="store_true", help="print the model card as JSON")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="compare a model's predictions with reference labels")
    p.add_argument("--dataset", metavar="NAME", required=True, help="the dataset to evaluate on")
    p.add_argument("--model", metavar="NAME", help="the segmenter (a grader's name: the grader)")
    p.add_argument("--grader", metavar="NAME", help="the grader (default: the default grader)")
    p.add_argument(
        "--reference",
        metavar="RATER",
        help="whose labels are the truth (default: reference, else imported, else the only "
        "rater with labels)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object (docs/CLI.md)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("serve", help="the deployment form of the app (sign-in on every page)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8501, help="port to serve on (default 8501)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "user",
        help="manage accounts (admin)",
        description="Passwords are asked on the terminal, or read from the first line of stdin.",
    )
    p.add_argument("action", choices=("add", "passwd", "disable", "enable"))
    p.add_argument("name", metavar="NAME")
    p.add_argument("--role", choices=("admin", "rater", "viewer"), default="rater")
    p.set_defaults(func=cmd_user)

    p = sub.add_parser("backup", help="write a backup of the labels store")
    p.add_argument("--out", metavar="FILE", required=True)
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="restore a backup into an empty labels store")
    p.add_argument("file", metavar="FILE")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser(
        "check", help="list stored masks, predictions and statuses that fail today's checks"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("bench", help="float32 peak and each shipped model's throughput")
    p.add_argument("--json", action="store_true")
    p.add_argument("--batch", type=int, default=1, metavar="N", help="images per forward pass")
    p.add_argument(
        "--model", action="append", metavar="NAME", help="measure only this model (repeatable)"
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        metavar="N",
        help="measure everything N times, interleaved, and report medians (default 1)",
    )
    p.add_argument(
        "--record",
        action="store_true",
        help="write each model's fastest runtime into its model card (used from then on)",
    )
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("phantoms", help="write a synthetic (phantom) SGUS dataset to a folder")
    p.add_argument("--out", metavar="DIR", required=True)
    p.add_argument("--patients", type=int, default=40, metavar="N", help="four glands each")
    p.add_argument("--first-seed", type=int, default=0, metavar="S")
    p.set_defaults(func=cmd_phantoms)

    p = sub.add_parser(
        "bench-browse", help="time the Browse page's queries on a large synthetic store"
    )
    p.add_argument("--images", type=int, default=10_000, metavar="N")
    p.add_argument("--work-dir", metavar="DIR", help="where to build the store (default: temp)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_browse)

    p = sub.add_parser(
        "bench-generalisation",
        help="train on all appearance families but one, test on the one left out",
    )
    p.add_argument("--families", metavar="F,G,...", help="families (default: all)")
    p.add_argument("--epochs", type=int, default=14, metavar="N", help="epochs per network")
    p.add_argument("--steps", type=int, default=140, metavar="N", help="batches per epoch")
    p.add_argument(
        "--then-epochs",
        type=int,
        default=0,
        metavar="N",
        help="then continue each network N more epochs at --then-rate (the first --epochs are "
        "reused from the work folder when trained before)",
    )
    p.add_argument("--then-rate", type=float, default=5e-4, metavar="LR", help="(default 5e-4)")
    p.add_argument(
        "--then-remap",
        type=float,
        default=0.0,
        metavar="P",
        help="during the continuation, pass this share of the frames through a random "
        "grey-level curve that may invert contrast (default 0)",
    )
    p.add_argument(
        "--then-random-conv",
        type=float,
        default=0.0,
        metavar="P",
        help="during the continuation, pass this share of the frames through a randomly drawn "
        "shallow convolutional network (new texture and grey-level response; default 0)",
    )
    p.add_argument("--base-filters", type=int, default=8, metavar="N", help="U-Net width")
    p.add_argument("--seed", type=int, default=0, metavar="S")
    p.add_argument(
        "--zero-shot-only", action="store_true", help="train networks without prompt channels"
    )
    p.add_argument(
        "--flip",
        action="store_true",
        help="read zero-shot with a test-time flip (mean with the mirrored frame's probability)",
    )
    p.add_argument("--test-frames", type=int, default=40, metavar="N", help="per family")
    p.add_argument(
        "--model", action="append", metavar="NAME", help="also test this shipped model (repeatable)"
    )
    p.add_argument(
        "--work-dir",
        metavar="DIR",
        help="trained networks and result.json (default: data/generalisation)",
    )
    p.add_argument(
        "--keep-as",
        metavar="NAME",
        help="copy the network trained on every family into the models folder as NAME",
    )
    p.add_argument(
        "--make-default",
        action="store_true",
        help="with --keep-as: make it the default segmenter (and the prompted one unless "
        "--zero-shot-only) in models/default.json",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_generalisation)

    p = sub.add_parser(
        "bench-learning-curve",
        help="fine-tune on N outlined frames of a family the models never saw; grader CV",
    )
    p.add_argument("--families", metavar="A,B", help="families to run (default: all)")
    p.add_argument("--sizes", default="5,10,20,40", metavar="N,N", help="labelled frames per row")
    p.add_argument("--test-frames", type=int, default=40, metavar="N", help="per family")
    p.add_argument("--epochs", type=int, default=60, metavar="N", help="most fine-tuning epochs")
    p.add_argument(
        "--start",
        metavar="MODEL",
        help="start from this model's network that never saw the family, "
        "models/held-out/MODEL-without-F.keras (default: the default segmenter)",
    )
    p.add_argument("--segmenter", metavar="KERAS", help="start from this .keras file instead")
    p.add_argument(
        "--no-curve", dest="curve", action="store_false", help="only the grader benchmark"
    )
    p.add_argument(
        "--grader-frames",
        type=int,
        default=150,
        metavar="N",
        help="graded frames without masks for the grader cross-validation (0: skip it)",
    )
    p.add_argument("--folds", type=int, default=5, metavar="K", help="grader CV folds")
    p.add_argument("--grader-epochs", type=int, default=40, metavar="N", help="CNN grader epochs")
    p.add_argument(
        "--masks",
        choices=("predicted", "fov", "rater"),
        default="predicted",
        help="what the grader reads in: the held-out network's masks, the whole FOV, the truth",
    )
    p.add_argument(
        "--grader-lofo",
        action="store_true",
        help="also the feature grader left-one-family-out beside the shipped grader",
    )
    p.add_argument(
        "--keep-grader-as",
        metavar="NAME",
        help="with --grader-lofo: save the feature grader fitted on every family as NAME",
    )
    p.add_argument(
        "--make-default", action="store_true", help="with --keep-grader-as: the default grader"
    )
    p.add_argument("--seed", type=int, default=0, metavar="S")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_learning_curve)

    p = sub.add_parser(
        "bench-startup", help="cold-start time and peak memory of a one-frame sgus predict"
    )
    p.add_argument("--runs", type=int, default=5, metavar="N", help="fresh processes (default 5)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_startup)

    p = sub.add_parser(
        "bench-doppler",
        help="Doppler detection on greyscale frames and vascular fraction vs the truth",
    )
    p.add_argument("--grey", type=int, default=20, metavar="N", help="greyscale frames per family")
    p.add_argument("--doppler", type=int, default=30, metavar="N", help="Doppler phantoms")
    p.add_argument(
        "--jpeg", type=int, action="append", metavar="Q", help="JPEG quality (repeatable)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_doppler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sgus``; returns the process exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args, load_settings()) or 0)
    except SgusError as exc:
        print(f"sgus {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("sgus: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
