"""Score a directory of recordings on a Dask cluster: one model, many files, many machines.

    python examples/dask/score_recordings.py MODEL.lstm DIRECTORY [--scheduler ADDRESS]
        [--pattern '*.wav'] [-o OUTDIR] [--workers N]

Without --scheduler it starts a LocalCluster of N worker processes on this machine (what
`lstmlite run --jobs N` does without Dask); with --scheduler tcp://host:8786 the same code
runs on that cluster's workers. The model goes to every worker once (client.scatter with
broadcast: it pickles as its .lstm bytes and is rebuilt by lstmlite's reader); each task
streams one file through its own Stream of it, as `lstmlite run` does, and returns that
file's detections and summary (and writes its per-step outputs to OUTDIR when given). The
workers read the files themselves, so on a real cluster the directory (and OUTDIR) must be
visible to every worker at the same path: a shared or network file system.

Needs `pip install "dask[distributed]"`; lstmlite itself does not.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
from typing import Dict, List, Optional

from dask.distributed import Client, LocalCluster

import lstmlite
from lstmlite.runner import score_file


def score_recordings(client: Client, model: lstmlite.Model, paths: List[str],
                     output_directory: Optional[str] = None) -> List[Dict]:
    """Each path scored on the cluster behind `client`: lstmlite.runner.score_file's result
    ({"input", "lines", "summary", "error"}) per path, in the order given. A file that fails
    has its one-line error in "error"; the others are unaffected."""
    shipped = client.scatter(model, broadcast=True)  # once per worker, not once per task
    outputs = [None] * len(paths) if output_directory is None else [
        os.path.join(output_directory, os.path.splitext(os.path.basename(p))[0] + ".npy")
        for p in paths]
    futures = [client.submit(score_file, shipped, path, output, pure=False)
               for path, output in zip(paths, outputs)]
    return client.gather(futures)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a .lstm file")
    parser.add_argument("directory", help="the recordings (.wav, .npy or .csv)")
    parser.add_argument("--pattern", default="*.wav", help="which files (*.wav)")
    parser.add_argument("--scheduler", help="a running cluster's scheduler address "
                                            "(default: a LocalCluster on this machine)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="LocalCluster worker processes (one per core)")
    parser.add_argument("-o", "--output", help="a directory for each file's outputs (.npy)")
    args = parser.parse_args(argv)
    model = lstmlite.load(args.model)
    paths = sorted(glob.glob(os.path.join(args.directory, args.pattern)))
    if not paths:
        print(f"no {args.pattern} files in {args.directory}", file=sys.stderr)
        return 1
    if args.output:
        os.makedirs(args.output, exist_ok=True)
    if args.scheduler:
        client = Client(args.scheduler)
    else:
        client = Client(LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                     processes=True, dashboard_address=":0"))
    with client:
        results = score_recordings(client, model, paths, args.output)
    failed = 0
    for result in results:
        for line in result["lines"]:
            print(f"{result['input']}\t{line}")
        if result["error"]:
            failed += 1
            print(f"error: {result['error']}", file=sys.stderr)
    print(f"# {len(results)} files, {failed} failed", file=sys.stderr)
    return min(failed, 125)


if __name__ == "__main__":
    sys.exit(main())
