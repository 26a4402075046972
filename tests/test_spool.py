"""The spool journal (chachaml/spool.py): records, replay, torn writes, adoption by lock."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chachaml.spool import Spool, adopt_dead, new_spool, spool_folder


def test_points_groups_and_acks_replay_from_the_file(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "a.spool")
    sp.append("r1", [("x", 1.0, None, 10), ("y", math.nan, 3, 11)])
    sp.append("r1", [("x", math.inf, None, 12)])
    sp.append("r2", [("x", -math.inf, 0, 13)])
    first, second = sp.groups()
    assert (first.run_id, first.lo, first.hi, len(first.points)) == ("r1", 1, 2, 3)
    assert (second.run_id, second.lo, second.hi) == ("r2", 3, 3)
    sp.ack(first)
    sp.append("r2", [("z", 5.0, None, 14)])
    assert sp.pending == 2
    sp.close()  # not done: the file stays
    assert (tmp_path / "a.spool").exists()
    again = Spool(tmp_path / "a.spool")  # as an adopter reads it
    groups = again.groups()
    assert groups[0].batch_id == second.batch_id  # the same id: a resend is recognisable
    assert groups[0].points == [("x", -math.inf, 0, 13)]
    assert [p for g in groups[1:] for p in g.points] == [("z", 5.0, None, 14)]
    assert again.seq == 4  # new records continue the sequence
    for g in groups:
        again.ack(g)
    again.close()
    assert not (tmp_path / "a.spool").exists()  # all acked: removed


def test_a_torn_last_record_is_dropped(tmp_path: Path) -> None:
    sp = Spool(tmp_path / "t.spool")
    sp.append("r", [("x", 1.0, None, 1)])
    sp.close(remove_if_done=False)
    with open(tmp_path / "t.spool", "ab") as fh:
        fh.write(b'{"p": 2, "r": "r", "m": [["x", 2.0')  # the crash came mid-write
    again = Spool(tmp_path / "t.spool")
    assert [g.points for g in again.groups()] == [[("x", 1.0, None, 1)]]
    again.close(remove_if_done=False)


def test_only_spools_of_dead_processes_are_adopted(tmp_path: Path) -> None:
    folder = spool_folder("http://127.0.0.1:1", str(tmp_path))
    code = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from chachaml.spool import new_spool
        sp = new_spool(Path(sys.argv[1]))
        sp.append("r", [("x", 1.0, None, 1)])
        print(sp.path, flush=True)
        sys.stdin.readline()
        """
    )
    live = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    dead = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert live.stdout is not None and dead.stdout is not None
    live_path, dead_path = live.stdout.readline().strip(), dead.stdout.readline().strip()
    dead.kill()
    dead.communicate(timeout=60)
    mine = new_spool(folder)
    adopted = list(adopt_dead(folder, mine.path))
    assert [str(s.path) for s in adopted] == [dead_path]  # not the live one, not mine
    assert adopted[0].pending == 1
    assert list(adopt_dead(folder, mine.path)) == []  # held by this process now
    live.communicate("\n", timeout=60)  # closes its pipes too
    for s in adopted:
        s.close(remove_if_done=False)
    mine.close()
    assert Path(live_path).exists()  # its owner exited with a point pending: left for adoption


def test_the_progress_of_a_journal_survives_compaction_and_keeps_the_spool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Points moved from a memory-mapped journal carry its id and slot (store/_remote_buffer.py):
    that progress is read back, rewritten when an all-acked spool is compacted (only for journals
    that still exist), found by ``moved_progress`` without the spool's lock, and a spool holding
    it is not deleted while its journal exists."""
    import chachaml.spool as spool_module

    monkeypatch.setattr(spool_module, "COMPACT_BYTES", 1)
    (tmp_path / "live.journal").write_bytes(b"")
    sp = Spool(tmp_path / "a.spool")
    sp.append("r1", [("x", 1.0, None, 10)], source=("gone", 7))
    sp.append("r1", [("x", 2.0, None, 11)], source=("live", 3))
    assert spool_module.moved_progress(tmp_path) == {"gone": 7, "live": 3}
    for group in sp.groups():
        sp.ack(group)  # all acked: the file is compacted
    assert spool_module.moved_progress(tmp_path) == {"live": 3}  # "gone" has no journal left
    sp.close()
    assert (tmp_path / "a.spool").exists()  # kept: the journal "live" still needs its progress
    reread = Spool(tmp_path / "a.spool")
    assert reread.moved == {"live": 3}
    reread.close()
    assert (tmp_path / "a.spool").exists()
    (tmp_path / "live.journal").unlink()
    again = Spool(tmp_path / "a.spool")
    again.close()
    assert not (tmp_path / "a.spool").exists()
