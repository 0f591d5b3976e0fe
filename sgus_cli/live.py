"""``sgus stream`` and ``sgus bench-live``: the live source segmented as it plays (docs/CLI.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sgus_core.settings import Settings


def cmd_stream(args: argparse.Namespace, settings: Settings) -> int:
    from sgus_core.inference.registry import load_pipeline
    from sgus_core.live import LiveSegmenter, run_stream
    from sgus_core.live.sources import describe

    segmenter, grader = load_pipeline(settings.models_dir, args.model)
    live = LiveSegmenter(segmenter, None if args.no_grade else grader, spacing_mm=args.spacing_mm)
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(desc=f"stream {describe(args.source)}", unit="frame", file=sys.stderr)

    def progress(frames: int, seconds: float) -> None:
        if bar is not None:
            bar.update(frames - bar.n)
            bar.set_postfix_str(f"{frames / max(seconds, 1e-9):.1f} frames/s", refresh=False)

    try:
        report = run_stream(
            args.source,
            Path(args.out),
            live,
            seconds=args.seconds,
            max_pixels=settings.max_pixels,
            progress=progress,
        )
    finally:
        if bar is not None:
            bar.close()
    print(
        f"segmented {report.frames} frames of {describe(args.source)} with {segmenter.name} in "
        f"{report.seconds:.1f} s ({report.fps:.1f} frames/s); stopped by {report.stopped_by}"
    )
    for path in report.outputs:
        print(f"  wrote {path}")
    return 0


def cmd_bench_live(args: argparse.Namespace, settings: Settings) -> int:
    from sgus_cli.common import progress_bar
    from sgus_core.bench.live import run_live_bench

    width, _, height = args.size.partition("x")
    with progress_bar("bench-live", enabled=not args.json) as bar:
        result = run_live_bench(
            settings.models_dir,
            model=args.model,
            frames=args.frames,
            size=(int(width), int(height)),
            rounds=args.rounds,
            grade=not args.no_grade,
            progress=bar,
        )
    if args.json:
        print(json.dumps(result))
        return 0
    grader = f" + {result['grader']}" if result["grader"] else ""
    verdict = "meets" if result["meets_target"] else "misses"
    print(
        f"live {result['size'][0]}x{result['size'][1]}, {result['model']}{grader}: "
        f"{result['frames_per_s']} frames/s end to end (median of {result['rounds']}); "
        f"{verdict} the {result['target_frames_per_s']} frames/s target"
    )
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """``stream`` and ``bench-live`` on the ``sgus`` parser."""
    p = sub.add_parser(
        "stream", help="segment a live source (capture device, stream address, video file)"
    )
    p.add_argument(
        "--source",
        required=True,
        metavar="DEVICE|URL|FILE",
        help="a capture device index (0 is the first; a UVC capture card is one), an RTSP or "
        "HTTP(S) stream address, or a video file",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="overlay.mp4 and frames.csv go here")
    p.add_argument("--model", metavar="NAME", help="segmenter (default: the default one)")
    p.add_argument(
        "--seconds",
        type=float,
        metavar="N",
        help="stop after N seconds (default: until the "
        "source ends or Ctrl+C; what was written is kept either way)",
    )
    p.add_argument("--spacing-mm", type=float, metavar="MM", help="mm per pixel, for areas in mm2")
    p.add_argument("--no-grade", action="store_true", help="segment only, no de Vita grade")
    p.set_defaults(func=cmd_stream)

    p = sub.add_parser(
        "bench-live", help="end-to-end live throughput (decode to overlay) on a phantom video"
    )
    p.add_argument("--model", metavar="NAME")
    p.add_argument("--size", default="640x480", metavar="WxH", help="frame size (default 640x480)")
    p.add_argument("--frames", type=int, default=100, metavar="N", help="frames per round")
    p.add_argument("--rounds", type=int, default=3, metavar="N", help="rounds; the median is given")
    p.add_argument("--no-grade", action="store_true", help="segment only")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench_live)
