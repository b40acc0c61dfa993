"""`tfi2i` command line: download | evaluate | export | translate | segmenter | import-reference | encode-features |
resolution-ablation | gradient-histogram | style-prior | demo."""

import argparse
import sys


def _demo_parser(subparsers):
    p = subparsers.add_parser("demo", help="generate the embedded demo data set (side-by-side PNG pairs)")
    p.add_argument("--root", default=None, help="output folder (default: the cache folder the recipes use)")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--num-train", type=int, default=48)
    p.add_argument("--num-val", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)

    def run(args):
        from tfi2i.data import demo

        root = args.root or demo.default_demo_root(args.size)
        print(demo.make_demo(root, num_train=args.num_train, num_val=args.num_val, size=args.size, seed=args.seed))
        return 0

    p.set_defaults(func=run)


def main(argv=None):
    from tfi2i import (convert, evaluate, export, gradient_histogram, pix2pixhd, resolution_ablation, segmenter,
                       style_prior, translate)
    from tfi2i.data import download

    parser = argparse.ArgumentParser(prog="tfi2i", description="Paired image-to-image translation GANs (TF2 / Keras 3).")
    sub = parser.add_subparsers(dest="command", required=True)
    download.add_parser(sub)
    evaluate.add_parser(sub)
    export.add_parser(sub)
    translate.add_parser(sub)
    segmenter.add_parser(sub)
    convert.add_parser(sub)
    pix2pixhd.add_parser(sub)
    resolution_ablation.add_parser(sub)
    gradient_histogram.add_parser(sub)
    style_prior.add_parser(sub)
    _demo_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
