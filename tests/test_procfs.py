"""ship.procfs: /proc/<pid>/stat read in one place, on written stat lines and on this process."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from ship import procfs
from helpers import wait_until

# proc(5): pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
# utime stime cutime cstime priority nice num_threads itrealvalue starttime vsize ...
TAIL = "S 1 70 71 0 -1 4194560 900 0 0 0 250 50 7 3 20 0 4 0 123456 2000000 300"


@pytest.mark.parametrize("line, fields", [
    (f"42 (gunicorn) {TAIL}", ("S", 1, 70, 71, "123456", 300)),
    (f"42 (a (b) c) {TAIL}", ("S", 1, 70, 71, "123456", 300)),      # parentheses and spaces in the name
    (f"42 ()) {TAIL.replace('S ', 'Z ', 1)}", ("Z", 1, 70, 71, "123456", 300)),
    ("42 (cut) S 1 70", None),                                        # not a whole line
    ("42 no name at all", None),
])
def test_fields_are_split_after_the_last_parenthesis(tmp_path, line, fields):
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "stat").write_text(line + "\n")
    found = procfs.fields(42, tmp_path)
    if fields is None:
        assert found is None
        assert (procfs.state(42, tmp_path), procfs.ppid(42, tmp_path), procfs.start_time(42, tmp_path),
                procfs.cpu_seconds(42, tmp_path)) == (None, None, None, None)
        return
    state, ppid, pgrp, session, start, ticks = fields
    assert found is not None
    assert (found[procfs.STATE], int(found[procfs.PGRP]), int(found[procfs.SESSION])) == (state, pgrp, session)
    assert (procfs.state(42, tmp_path), procfs.ppid(42, tmp_path), procfs.start_time(42, tmp_path)) == (
        state, ppid, start)
    assert procfs.cpu_ticks(found) == ticks
    assert procfs.cpu_seconds(42, tmp_path) == ticks / procfs.CLK_TCK


def test_a_process_that_is_not_there_is_none(tmp_path):
    assert procfs.fields(7, tmp_path) is None
    assert procfs.state("7", tmp_path) is None


def test_this_process_as_the_kernel_shows_it():
    pid = os.getpid()
    assert procfs.state(pid) == "R"                        # reading its own stat: running
    assert procfs.ppid(pid) == os.getppid()
    assert procfs.fields(pid)[procfs.PGRP] == str(os.getpgrp())
    assert procfs.fields(pid)[procfs.SESSION] == str(os.getsid(0))
    assert procfs.start_time(pid) == procfs.start_time(pid)
    before = procfs.cpu_seconds(pid)
    end = time.process_time() + 0.05
    while time.process_time() < end:                       # spin: the kernel's count moves with it
        pass
    assert before is not None and procfs.cpu_seconds(pid) > before


def test_alive_says_no_for_exited_zombies_and_nonsense():
    proc = subprocess.Popen(["true"])
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)   # exited, still a zombie
    assert not procfs.alive(proc.pid)
    proc.wait()
    assert not procfs.alive(proc.pid)
    assert not procfs.alive(0) and not procfs.alive(-1)
    assert procfs.alive(os.getpid())


def test_lower_priority_lowers_the_session_and_its_processes_not_ours(tmp_path):
    """A child leading a session of its own (as the integration session's runs do), a process it
    started before and one after: all at the niceness, and in a session group at it too where the
    kernel groups by session; this process and its own group unchanged."""
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    if ours >= 19:
        pytest.skip("this process is at niceness 19 already: nothing lower to set")
    group = procfs.PROC / "self" / "autogroup"
    before = group.read_text() if group.exists() else None
    script = "sleep 60 & echo $! > before; read go; sleep 60 & echo $! > after; wait"
    lead = subprocess.Popen(["sh", "-c", script], cwd=tmp_path, stdin=subprocess.PIPE, text=True,
                            start_new_session=True)

    def child(name):
        path = tmp_path / name
        return path.exists() and path.read_text().strip()

    try:
        wait_until(lambda: child("before"), 10, "the first child")
        procfs.lower_priority(lead.pid, 19)
        lead.stdin.write("go\n")
        lead.stdin.flush()
        pids = [lead.pid, int(child("before")), int(wait_until(lambda: child("after"), 10, "the second child"))]
        assert [os.getpriority(os.PRIO_PROCESS, pid) for pid in pids] == [19, 19, 19]
        if before is not None:
            groups = [(procfs.PROC / str(pid) / "autogroup").read_text().split() for pid in pids]
            assert groups[0] == groups[1] == groups[2] and groups[0][-1] == "19", groups
            assert groups[0][0] != before.split()[0]
            assert group.read_text() == before
        assert os.getpriority(os.PRIO_PROCESS, 0) == ours
    finally:
        os.killpg(lead.pid, 9)
        lead.wait()


def test_lower_priority_of_a_process_that_is_gone_is_quiet():
    proc = subprocess.Popen(["true"])
    proc.wait()
    procfs.lower_priority(proc.pid, 10)
