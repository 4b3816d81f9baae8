"""examples/dask/score_recordings.py on a LocalCluster of worker processes, run as a user
runs it (in a child process: a Dask client leaves threads that would disturb the allocation
tests of this process): each file's detections and outputs equal `lstmlite run`'s on it
alone, a bad file is reported without stopping the others, and the model reaches every worker
process, not only this one."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("dask.distributed")
import lstmlite as ll  # noqa: E402
from lstmlite.runner import run_file  # noqa: E402

from test_run_cli import sentence_pcm, write_wav  # noqa: E402

KWS = ll.examples.path("kws")
RECIPE = os.path.join(os.path.dirname(__file__), "..", "examples", "dask",
                      "score_recordings.py")


def _recordings(tmp_path):
    pcm = sentence_pcm()
    folder = tmp_path / "recordings"
    folder.mkdir()
    for index, cut in enumerate([len(pcm), len(pcm) // 2, len(pcm) // 3]):
        write_wav(folder / f"rec{index}.wav", pcm[:cut])
    (folder / "rec1b.wav").write_bytes(b"RIFF")
    return folder


def test_the_recipe_scores_a_directory_on_a_local_cluster(tmp_path):
    folder = _recordings(tmp_path)
    result = subprocess.run([sys.executable, RECIPE, KWS, str(folder), "--workers", "2",
                             "-o", str(tmp_path / "out")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1, result.stderr              # one file failed
    assert f"error: {folder}/rec1b.wav: not a readable .wav file" in result.stderr
    assert "# 4 files, 1 failed" in result.stderr
    model = ll.load(KWS)
    expected_lines = []
    for name in ("rec0.wav", "rec1.wav", "rec2.wav"):
        lines = []
        run_file(model, str(folder / name), str(tmp_path / "alone.npy"), out=lines.append)
        expected_lines += [f"{folder}/{name}\t{line}" for line in lines]
        np.testing.assert_array_equal(np.load(tmp_path / "out" / name.replace(".wav", ".npy")),
                                      np.load(tmp_path / "alone.npy"))
    assert result.stdout.splitlines() == expected_lines and expected_lines


WORKERS_SCRIPT = """
import json, os, sys
sys.path.insert(0, os.path.dirname(sys.argv[1]))
from dask.distributed import Client, LocalCluster
import lstmlite, score_recordings
with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                  dashboard_address=":0") as cluster, Client(cluster) as client:
    results = score_recordings.score_recordings(client, lstmlite.load(sys.argv[2]),
                                                sys.argv[3:])
    pids = sorted(set(client.run(os.getpid).values()))
print(json.dumps({"results": results, "workers": pids, "me": os.getpid()}))
"""


def test_score_recordings_runs_on_worker_processes(tmp_path):
    folder = _recordings(tmp_path)
    paths = sorted(str(p) for p in folder.iterdir())
    result = subprocess.run([sys.executable, "-c", WORKERS_SCRIPT, RECIPE, KWS, *paths],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert len(report["workers"]) == 2 and report["me"] not in report["workers"]
    results = report["results"]
    assert [r["input"] for r in results] == paths
    model = ll.load(KWS)
    for result in results:
        if result["input"].endswith("rec1b.wav"):
            assert "not a readable .wav file" in result["error"] and result["summary"] is None
            continue
        lines = []
        summary = run_file(model, result["input"], out=lines.append)
        assert result["error"] is None and result["lines"] == lines
        assert result["summary"]["steps"] == summary["steps"]
