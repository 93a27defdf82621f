"""Data command line: `python -m helpers.data <command> ...` (see --help).

    python -m helpers.data synth --out data/synthfaces --n 20000 --size 64 [--seed 0] [--workers 2]
    python -m helpers.data rehearsal --out data/rehearsal --n 300   (CelebA-, LFW- and LFWcrop-shaped stand-ins)
"""
from __future__ import annotations

import argparse
import sys
import time


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _cmd_synth(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .synth import write_celeba_layout

    if args.if_missing and (Path(args.out) / "list_attr_celeba.txt").is_file():
        print(f"{args.out} already holds a face set: nothing to do")
        return 0
    t0 = time.perf_counter()
    try:
        out = write_celeba_layout(args.out, n=args.n, size=args.size, seed=args.seed, workers=args.workers,
                                  progress=not args.quiet, overwrite=args.overwrite)
    except (FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    dt = time.perf_counter() - t0
    print(f"wrote {args.n} faces ({args.size}x{args.size}) to {out} in {dt:.1f} s ({args.n / dt:.0f} img/s)")
    return 0


def _cmd_rehearsal(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .rehearsal import write_celeba_sized, write_lfw_sized

    out = Path(args.out)
    celeba = out / "celeba"
    if args.if_missing and (celeba / "list_eval_partition.txt").is_file() and (out / "lfwcrop_color").is_dir():
        print(f"{out} already holds the rehearsal sets: nothing to do")
        return 0
    t0 = time.perf_counter()
    try:
        celeba = write_celeba_sized(celeba, n=args.n)
        lfw = write_lfw_sized(out, n=args.n)
        lfwcrop = write_lfw_sized(out, n=args.n, crop=True)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.n} faces each, shaped as CelebA ({celeba}), LFW ({lfw}) and LFWcrop ({lfwcrop}), "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the parser; each subcommand sets `func` (add new ones with `sub.add_parser`)."""
    parser = argparse.ArgumentParser(prog="python -m helpers.data", description="Face GAN Lab data tools.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    synth = sub.add_parser("synth", help="render the procedural face set in CelebA's on-disk layout",
                           description="Render procedural faces into img_align_celeba/ + list_attr_celeba.txt "
                                       "+ list_eval_partition.txt + synth_meta.json.")
    synth.add_argument("--out", default=None, help="output folder (default: data/synthfaces)")
    synth.add_argument("--n", type=_positive, default=20000, help="number of faces (default 20000)")
    synth.add_argument("--size", type=int, default=64, help="image side in pixels, 8..1024 (default 64)")
    synth.add_argument("--seed", type=int, default=0, help="data set seed (default 0)")
    synth.add_argument("--workers", type=_positive, default=2, help="worker processes (default 2)")
    synth.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    synth.add_argument("--if-missing", action="store_true", help="do nothing when the folder already holds a set")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(func=_cmd_synth)

    reh = sub.add_parser("rehearsal", help="render CelebA- and LFW-shaped stand-ins for `make rehearse`",
                         description="Write <out>/celeba (CelebA's layout, 178x218 frames, 40 attribute columns), "
                                     "<out>/lfw (person folders of 250x250 frames) and <out>/lfwcrop_color "
                                     "(faces/*.ppm, 64x64).")
    reh.add_argument("--out", default="data/rehearsal", help="output folder (default: data/rehearsal)")
    reh.add_argument("--n", type=_positive, default=300, help="faces in each set (default 300)")
    reh.add_argument("--if-missing", action="store_true", help="do nothing when the sets are there")
    reh.set_defaults(func=_cmd_rehearsal)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "out", "") is None:
        from ..core.paths import SYNTH_DIR
        args.out = SYNTH_DIR
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
