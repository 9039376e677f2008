"""Each offline step's diff, from recorded facts, and the Runner's --check: no host is booted here.

The booted-host tests prove the reads and applies; these pin down what each
step decides from a given state, including the states that are hard to reach
on a real host (a half-set-up front, a standalone serverdir under a replica).
"""

from __future__ import annotations

import pytest

from devpi_airgap.core.console import human_bytes
from devpi_airgap.core.errors import RemoteError
from devpi_airgap.core.files import sha256_file
from devpi_airgap.core.inventory import Front, Server
from devpi_airgap.offline.bundle_import import RecordImport
from devpi_airgap.offline.host_steps import (
    CopyWheels,
    DevpiVenv,
    SecretFile,
    SeedServer,
    ServiceFacts,
    ServiceUnit,
    ServiceUser,
    VenvFacts,
)
from devpi_airgap.offline.index_steps import IndexFacts, Upload, UserAndIndex
from devpi_airgap.offline.layout import SECRETFILE, UNIT_PATH
from devpi_airgap.offline.nginx import FrontFacts, NginxFront
from devpi_airgap.offline.replica import ReplicaInit, SharedSecret
from devpi_airgap.offline.steps import Outcome, Runner, Step
from testing.wheels import make_wheel

SERVER = Server(name="devpi-host", target="server")


class Recorded(Step):
    """A step over a recorded state, counting its applies."""

    name = "recorded"

    def __init__(self, state, wanted):
        self.state, self.wanted, self.applied = state, wanted, 0

    def read(self, host):
        return self.state

    def diff(self, state):
        return [] if state == self.wanted else [f"{state} -> {self.wanted}"]

    def apply(self, host, state):
        self.applied += 1
        return [f"set to {self.wanted}"]


def test_runner_applies_only_differences_and_reports_each_step():
    seen: list[Outcome] = []
    runner = Runner(host=None, on_outcome=seen.append)
    same, other = Recorded("a", "a"), Recorded("a", "b")
    runner.run(same)
    runner.run(other)
    assert (same.applied, other.applied) == (0, 1)
    assert seen == runner.outcomes == [Outcome("recorded"), Outcome("recorded", ("set to b",), applied=True)]
    assert runner.changed


def test_check_mode_diffs_but_never_applies():
    runner = Runner(host=None, check=True)
    step = Recorded("a", "b")
    outcome = runner.run(step)
    assert step.applied == 0
    assert outcome == Outcome("recorded", ("a -> b",), applied=False)
    assert runner.changed  # "would change": the task layer says so, and nothing was touched


def test_copy_wheels_copies_missing_and_changed_ones(tmp_path):
    a, b = make_wheel(tmp_path, "a", "1.0"), make_wheel(tmp_path, "b", "1.0")
    step = CopyWheels([a, b])
    assert step.diff({a.name: sha256_file(a), b.name: sha256_file(b)}) == []
    assert step.diff({a.name: sha256_file(a), b.name: "0" * 64}) == ["1 to copy"]
    assert step.missing({}) == [a, b]


def test_service_user_secret_and_init_follow_what_was_read(tmp_path):
    assert ServiceUser().diff(True) == [] and ServiceUser().diff(False) == ["create devpi"]
    assert SecretFile().diff("devpi 600") == []
    for loose in ("devpi 644", "root 600", ""):
        assert SecretFile().diff(loose) == [f"write {SECRETFILE} (0600)"]
    wheels = [make_wheel(tmp_path, "alpha", "1.0"), make_wheel(tmp_path, "beta", "2.0")]
    seed = SeedServer(Server(name="h", target="t", user="alice", index="approved"), None, wheels)
    size = human_bytes(sum(w.stat().st_size for w in wheels))
    assert seed.diff(True) == []
    assert seed.diff(False) == [f"initialise /var/lib/devpi/server with 2 files, {size} in alice/approved"]


def test_venv_installs_upgrades_or_refuses_a_delta_without_its_wheels():
    step = DevpiVenv("6.20.3", 3141)
    assert step.diff(VenvFacts("6.20.3", True, True)) == []
    assert step.diff(VenvFacts(None, False, False)) == ["install devpi-server 6.20.3 in /opt/devpi-airgap/venv-6.20.3"]
    assert step.diff(VenvFacts("6.19.0", True, True)) == ["upgrade devpi-server 6.19.0 -> 6.20.3, after a backup"]
    assert "install" in step.diff(VenvFacts("6.19.0", True, False))[0]  # stopped: no live upgrade needed
    with pytest.raises(RemoteError, match="delta bundle does not carry its wheels"):
        DevpiVenv("6.20.3", 3141, wheels_at_hand=False).diff(VenvFacts("6.19.0", True, True))


def test_unit_is_written_enabled_started_or_restarted_as_needed():
    unit = "[Service]\nExecStart=/x\n"
    running = ServiceFacts(unit, enabled=True, active=True)
    assert ServiceUnit(unit, lambda: False).diff(running) == []
    assert ServiceUnit(unit, lambda: True).diff(running) == ["restarted"]  # a new venv needs a restart
    assert ServiceUnit(unit + "# new\n", lambda: False).diff(running) == [f"{UNIT_PATH} written", "restarted"]
    assert ServiceUnit(unit, lambda: False).diff(ServiceFacts(None, False, False)) == [
        f"{UNIT_PATH} written",
        "enabled",
        "started",
    ]


def test_user_and_index_need_the_exact_index_settings():
    step = UserAndIndex(None, Server(name="h", target="t", user="team", index="stable"), None)
    good = {"type": "stage", "bases": [], "volatile": False}
    assert step.diff(IndexFacts(True, good)) == []
    assert step.diff(IndexFacts(False, None)) == ["user team created", "index team/stable set to bases= volatile=False"]
    assert step.diff(IndexFacts(True, dict(good, bases=["root/pypi"]))) == [
        "index team/stable set to bases= volatile=False"
    ]
    assert step.diff(IndexFacts(True, dict(good, volatile=True)))
    assert step.diff(IndexFacts(True, good, user_password_taken=False)) == ["password of team set from the secrets"]


def test_upload_plans_missing_files_and_keeps_conflicts_apart(tmp_path):
    a, b, c = (make_wheel(tmp_path, name, "1.0") for name in "abc")
    step = Upload(None, SERVER, None, [a, b, c], progress=None)
    changes = step.diff({a.name: sha256_file(a), b.name: "f" * 64})
    assert changes and changes[0].startswith("1 files,")
    assert step.result.todo == [c] and step.result.skipped == [a.name]
    assert [name for name, _ in step.result.conflicts] == [b.name]
    assert Upload(None, SERVER, None, [a], progress=None).diff({a.name: sha256_file(a)}) == []


def front_facts(**changed) -> FrontFacts:
    facts = dict(
        installed=True,
        cache_dir=True,
        tls_sha256={},
        site=None,
        enabled_link="",
        default_collides=False,
        enabled=True,
        active=True,
    )
    return FrontFacts(**{**facts, **changed})


def test_nginx_front_diff_names_each_missing_piece(tmp_path):
    cert, key = tmp_path / "front.crt", tmp_path / "front.key"
    cert.write_text("cert")
    key.write_text("key")
    server = Server(
        name="devpi-host", target="t", front=Front(port=443, server_name="pypi.internal", tls_cert=cert, tls_key=key)
    )
    step = NginxFront(server, has_replicas=False, max_body_bytes=1)
    converged = front_facts(
        site=step.site,
        enabled_link="/etc/nginx/sites-available/devpi-airgap",
        tls_sha256={
            "/etc/devpi-airgap/tls/front.crt": sha256_file(cert),
            "/etc/devpi-airgap/tls/front.key": sha256_file(key),
        },
    )
    assert step.diff(converged) == []
    fresh = step.diff(front_facts(cache_dir=False, default_collides=True, enabled=False, active=False))
    assert fresh[0].startswith("cache ") and "site enabled" in fresh and "nginx started" in fresh
    assert "/etc/devpi-airgap/tls/front.key (0600)" in fresh and any("default site disabled" in c for c in fresh)
    changed_site = step.diff(FrontFacts(**{**converged.__dict__, "site": "old"}))
    assert changed_site == ["/etc/nginx/sites-available/devpi-airgap written", "nginx reloaded"]
    with pytest.raises(RemoteError, match="nginx is not installed on devpi-host"):
        step.diff(front_facts(installed=False))


def test_replica_init_and_shared_secret():
    init = ReplicaInit("http://10.0.0.5:3141", "mirror", primary=None)
    assert init.diff(({"role": "replica", "primary-uuid": "a1"}, "a1")) == []
    assert init.diff(({"role": "replica"}, "a1")) == []  # not replicated yet: nothing to compare
    assert init.diff((None, "a1")) == ["/var/lib/devpi/server initialised as a replica of http://10.0.0.5:3141"]
    with pytest.raises(RemoteError, match="holds a standalone devpi, not a replica"):
        init.diff(({}, "a1"))
    # the primary was restored from a backup since: another uuid, and the replica starts anew
    (stale,) = init.diff(({"role": "replica", "primary-uuid": "a1"}, "b2"))
    assert "followed data its primary no longer has" in stale and "initialised anew" in stale
    secret = SharedSecret(primary=None)
    assert secret.diff(("abc", "abc")) == [] and secret.diff(("abc", ""))


def test_an_import_is_recorded_once():
    step = RecordImport({"bundle_id": "20261126-abc"})
    assert step.diff(["20261126-abc"]) == []
    assert step.diff(["older"]) == ["20261126-abc recorded in /var/lib/devpi-airgap/imported.json"]
