"""Kept runs in a hostile world: killed saves, two notebooks saving at once, damaged weights,
read-only results folders. Real processes, real files."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from course_utils import results
from course_utils.config import get_profile

SMOKE = get_profile("smoke")
# A child that trains nothing but saves a run with ~8 MB of weights, again and again.
SAVER = """
    import sys
    import numpy as np, torch
    from course_utils import results
    from course_utils.config import get_profile
    tag = float(sys.argv[1])
    model = torch.nn.Linear(1000, 2000)
    for i in range(int(sys.argv[2])):
        torch.nn.init.constant_(model.weight, tag + i)
        probs = np.full((4, 2), tag + i)
        results.save_run("toy", probs, np.zeros(4, int), {"source": "S"}, get_profile("smoke"),
                         model=model)
        print("saved", i, flush=True)
"""


def _saver(tag: float, times: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SAVER), str(tag), str(times)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
    )  # fmt: skip


def _check_whole(name: str = "toy") -> float | None:
    """The kept run's tag if it is whole (its weights agree with its predictions), else None."""
    run = results.load_run(name, "S", SMOKE)
    if run is None:
        return None
    model = torch.nn.Linear(1000, 2000)
    results.load_weights(model, name, SMOKE)
    assert torch.all(model.weight == float(run.probs[0, 0])), "weights of another save"
    return float(run.probs[0, 0])


def _leftovers() -> list[str]:
    folder = results.results_dir() / "smoke"
    return sorted(p.name for p in folder.iterdir() if p.name != ".toy.lock")


def test_a_save_killed_at_any_moment_leaves_the_old_run_the_new_one_or_none():
    first = _saver(0.0, 1)
    assert first.wait(120) == 0
    seen = set()
    for delay in (0.6, 0.9, 1.2, 1.5, 1.8, 2.1):  # into import, saving, swapping
        child = _saver(100.0, 1000)
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        tag = _check_whole()  # never a run that is accepted but broken
        seen.add(tag is not None)
    assert True in seen  # the kept run survived at least some of the kills
    assert all(name == "toy" or name.startswith(".toy.") for name in _leftovers())
    after = _saver(7.0, 1)  # the next save cleans up and keeps a whole run
    assert after.wait(120) == 0
    assert _check_whole() == 7.0


def test_two_processes_saving_one_run_both_finish_and_leave_a_whole_run():
    savers = [_saver(0.0, 8), _saver(1000.0, 8)]
    for saver in savers:
        out, err = saver.communicate(timeout=180)
        assert saver.returncode == 0, err
        assert out.count("saved") == 8
    assert _check_whole() in (7.0, 1007.0)
    assert _leftovers() == ["toy"]  # no partial or old folders left behind


def _keep_toy() -> torch.nn.Module:
    model = torch.nn.Linear(1000, 2000)
    torch.nn.init.constant_(model.weight, 3.0)
    results.save_run("toy", np.full((4, 2), 3.0), np.zeros(4, int), {"source": "S"}, SMOKE,
                     model=model)  # fmt: skip
    return model


@pytest.mark.parametrize("damage", ["truncated", "zeroed 4 KiB in the middle"])
def test_damaged_kept_weights_are_named_and_never_loaded(damage, capsys):
    _keep_toy()
    path = results.results_dir() / "smoke" / "toy" / "weights.pt"
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:
        middle = len(data) // 2
        data[middle : middle + 4096] = bytes(4096)
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"weights\.pt is damaged .* Delete .* run the notebook"):
        results.load_weights(torch.nn.Linear(1000, 2000), "toy", SMOKE)
    assert results.load_run("toy", "S", SMOKE) is None  # train_or_load trains again
    assert "not reusing the kept run" in capsys.readouterr().out


def test_a_read_only_results_folder_keeps_the_run_in_memory_and_reuses_what_it_holds(
    read_only, monkeypatch
):
    saved = read_only.run("""
        import numpy as np, torch
        from course_utils import results
        from course_utils.config import get_profile
        model = torch.nn.Linear(3, 2)
        results.save_run("toy", np.ones((4, 2)), np.zeros(4, int), {"source": "S"},
                         get_profile("smoke"), model=model)
    """)
    assert "could not be kept" in saved.stdout, saved.stdout + saved.stderr  # read-only: said
    assert "used from memory" in saved.stdout
    # Keep one run writably, then mount the same folder read-only: it is reused as it is.
    monkeypatch.setenv("COURSE_RESULTS_DIR", str(read_only.folder / "results"))
    results.save_run("toy", np.ones((4, 2)), np.zeros(4, int), {"source": "S"}, SMOKE,
                     model=torch.nn.Linear(3, 2))  # fmt: skip
    reused = read_only.run("""
        import torch
        from course_utils import results
        from course_utils.config import get_profile
        run = results.load_run("toy", "S", get_profile("smoke"))
        results.load_weights(torch.nn.Linear(3, 2), "toy", get_profile("smoke"))
        print("reused", run.reused)
    """)
    assert "reused True" in reused.stdout, reused.stdout + reused.stderr
