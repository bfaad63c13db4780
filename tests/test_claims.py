"""Per-cell claims: one live owner per cell; stale claims are taken over; names never escape."""

from __future__ import annotations

import json
import multiprocessing as mp
import time

import pytest

from zobench.api import UserError
from zobench.run.claims import Claim, claim_path, is_stale, live_claims, try_claim
from zobench.paths import check_name, check_sha, checked_child


def test_second_claim_sees_the_live_holder(tmp_path):
    """While one owner holds a cell, a second claim gets the holder's info, not a Claim."""
    first = try_claim(tmp_path, "s", "c1")
    assert isinstance(first, Claim)
    second = try_claim(tmp_path, "s", "c1")
    assert isinstance(second, dict) and second["token"] == first.info["token"]
    first.release()
    assert isinstance(try_claim(tmp_path, "s", "c1"), Claim)


@pytest.mark.integration
def test_claim_of_a_dead_pid_is_taken_over(tmp_path):
    """A claim whose owner pid on this host is gone is stale and can be claimed again."""
    proc = mp.get_context("spawn").Process(target=time.sleep, args=(0,))
    proc.start()
    proc.join()
    path = claim_path(tmp_path, "s", "c1")
    path.parent.mkdir(parents=True)
    import socket
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": proc.pid, "token": "old",
                                "heartbeat": time.time()}))
    claim = try_claim(tmp_path, "s", "c1")
    assert isinstance(claim, Claim) and claim.info["token"] != "old"


def test_old_heartbeat_is_stale_and_fresh_remote_is_not():
    now = time.time()
    remote = {"host": "elsewhere", "pid": 1, "heartbeat": now}
    assert not is_stale(remote, stale_after_s=60, now=now)
    assert is_stale(remote, stale_after_s=60, now=now + 61)
    assert is_stale({})  # unreadable
    assert is_stale(remote, alive=lambda info: False)  # an executor's own check wins


def test_heartbeat_refreshes_and_release_only_removes_own_claim(tmp_path):
    claim = try_claim(tmp_path, "s", "c1", job_id="42")
    before = claim.info["heartbeat"]
    with claim.heartbeat(every_s=0.05):
        time.sleep(0.3)
    assert json.loads(claim.path.read_text())["heartbeat"] > before
    assert live_claims(tmp_path, "s")["c1"]["job_id"] == "42"
    claim.path.write_text(json.dumps({"token": "someone-else", "heartbeat": time.time(), "host": "x", "pid": 1}))
    claim.release()
    assert claim.path.exists()


@pytest.mark.parametrize("bad", ["", ".", "..", "../x", "/abs", "a/b", ".hidden", "x" * 101, "a\nb", "a b", None, 3])
def test_unsafe_names_are_refused(bad):
    with pytest.raises(UserError, match="setting"):
        check_name(bad, "setting")


def test_checked_child_refuses_escapes(tmp_path):
    assert checked_child(tmp_path, "a", "b.json") == (tmp_path / "a" / "b.json").resolve()
    with pytest.raises(UserError):
        checked_child(tmp_path, "..", "x.json")
    with pytest.raises(UserError):
        check_sha("../x")
    assert check_sha("4cb30df") == "4cb30df"
