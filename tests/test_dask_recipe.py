"""examples/dask/score_recordings.py on a LocalCluster of worker processes: each file's
detections and outputs equal `lstmlite run`'s on it alone, a bad file is reported without
stopping the others, and the model reaches each worker once."""
import os
import sys

import numpy as np
import pytest

distributed = pytest.importorskip("dask.distributed")
import lstmlite as ll  # noqa: E402
from lstmlite.runner import run_file  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples", "dask"))
import score_recordings as recipe  # noqa: E402

from test_run_cli import SENTENCE, sentence_pcm, write_wav  # noqa: E402

KWS = ll.examples.path("kws")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0")
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


def test_scores_a_directory_on_worker_processes(client, tmp_path):
    pcm = sentence_pcm()
    paths = []
    for index, cut in enumerate([len(pcm), len(pcm) // 2, len(pcm) // 3]):
        path = tmp_path / f"rec{index}.wav"
        write_wav(path, pcm[:cut])
        paths.append(str(path))
    (tmp_path / "bad.wav").write_bytes(b"RIFF")
    paths.insert(1, str(tmp_path / "bad.wav"))
    model = ll.load(KWS)
    results = recipe.score_recordings(client, model, paths, str(tmp_path))
    assert [r["input"] for r in results] == paths
    assert results[1]["error"] and "bad.wav" in results[1]["error"]
    # every worker process held the model (sent once by scatter), not this process's object
    pids = client.run(os.getpid)
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
    for result in results[:1] + results[2:]:
        assert result["error"] is None
        lines = []
        run_file(model, result["input"], str(tmp_path / "alone.npy"), out=lines.append)
        assert result["lines"] == lines
        name = os.path.splitext(os.path.basename(result["input"]))[0] + ".npy"
        np.testing.assert_array_equal(np.load(tmp_path / name), np.load(tmp_path / "alone.npy"))
    assert results[0]["lines"], "the bundled sentence has keywords"


def test_the_command_line_on_a_local_cluster(tmp_path, capsys):
    for name in ("a.wav", "b.wav"):
        write_wav(tmp_path / name, sentence_pcm())
    assert recipe.main([KWS, str(tmp_path), "--workers", "2"]) == 0
    captured = capsys.readouterr()
    expected = []
    run_file(ll.load(KWS), str(tmp_path / "a.wav"), out=expected.append)
    assert expected and captured.out.splitlines() == \
        [f"{tmp_path}/{name}\t{line}" for name in ("a.wav", "b.wav") for line in expected]
    assert "# 2 files, 0 failed" in captured.err
