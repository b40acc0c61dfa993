"""Demo data generation speed: `make_demo` (side-by-side street scenes) and `make_label_demo` (two folders).

Prints one JSON object. The wall-clock figures that used to be asserted in
tests/data/test_demo.py live here instead (a timing budget in a test goes red
on a busy machine, not on slow code):

    python benchmarks/bench_demo.py                      # the default set: 48 + 8 pairs at 256, 3 repeats
    python benchmarks/bench_demo.py --sizes 64,256 --repeats 5

Each result gives the median seconds of ``--repeats`` generations, the time
per pair and the budget the old test asserted (``make_demo`` of the default
set under 5 s) with whether it was met.
"""

import argparse
import json
import resource
import tempfile
from pathlib import Path

import cv2

from machine import machine_info, time_calls
from tfi2i.data.demo import make_demo, make_label_demo

#: The budget tests/data/test_demo.py used to assert for the default set (56 pairs at 256).
DEFAULT_SET_BUDGET_S = 5.0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="256", help="comma-separated sides of make_demo's square halves")
    parser.add_argument("--num-train", type=int, default=48)
    parser.add_argument("--num-val", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        pairs = args.num_train + args.num_val
        for size in (int(s) for s in args.sizes.split(",")):
            median, times = time_calls(
                lambda: make_demo(Path(tmp) / f"demo{size}", args.num_train, args.num_val, size), 0, args.repeats)
            row = {"function": "make_demo", "size": size, "pairs": pairs, "median_s": median,
                   "ms_per_pair": 1000 * median / pairs, "times_s": times}
            if (size, args.num_train, args.num_val) == (256, 48, 8):
                row["budget_s"] = DEFAULT_SET_BUDGET_S
                row["within_budget"] = median < DEFAULT_SET_BUDGET_S
            results.append(row)
        median, times = time_calls(lambda: make_label_demo(Path(tmp) / "labels"), 0, args.repeats)
        results.append({"function": "make_label_demo", "size": [32, 64], "pairs": 10, "median_s": median,
                        "ms_per_pair": 1000 * median / 10, "times_s": times})
    print(json.dumps({
        "benchmark": "demo_data", **machine_info(), "opencv": cv2.__version__,
        "results": results, "peak_host_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }, indent=2))


if __name__ == "__main__":
    main()
