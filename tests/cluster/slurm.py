"""A private, single-node SLURM cluster for tests that submit real jobs.

``private_slurm(workdir)`` installs Debian's ``slurm-wlm`` and ``munge`` when
they are missing, starts a munge daemon, ``slurmctld`` and ``slurmd`` bound to
127.0.0.1 with a configuration of its own, waits until the node accepts jobs,
and stops every daemon it started on exit. It never touches ``/etc/slurm``,
``/etc/munge`` or a system-wide munge/SLURM that may already be running:
sockets, ports, keys, state and logs are all private to one cluster.

Clients reach the cluster through :attr:`SlurmCluster.env` (``SLURM_CONF``,
and a ``PATH`` whose first ``srun`` knows the config too); the SLURM executor
plugin submits with ``--export=ALL``, so jobs inherit that environment from
the Snakemake process that submitted them.

The node has one stand-in GPU (device file /dev/null), so jobs that ask for
a GPU are scheduled and get ``CUDA_VISIBLE_DEVICES`` on machines without one.

Every finished job is recorded by ``jobcomp/filetxt`` in
:attr:`SlurmCluster.jobcomp_path`, which :meth:`SlurmCluster.finished_jobs`
parses: there is no accounting database, so ``sacct`` cannot report jobs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SLURM_PROFILE = REPO_ROOT / "workflow" / "profiles" / "slurm"

# Options a Snakemake run needs on top of the slurm profile to work against a
# private cluster. Without an accounting database `sacct` cannot report job
# states, so the plugin must poll `squeue`, which shows finished jobs for
# MinJobAge (900 s), and the plugin only honours `squeue` when MinJobAge
# is at least three times the first status-check delay. That delay is also
# where polling restarts after a job finishes; each check that finds none
# finished waits 10 s longer (plugin 2.8.0), so with 6 s a job is seen done
# 6, 22 or 48 s after submission: a pan job (three Python start-ups, about
# 10-20 s) mostly at 22 s. `--slurm-no-account` states that no account is wanted
# (plugin 2.8.0 accepts but ignores it: its account guess via `sacct` fails
# and it then submits without `-A`, logging a warning).
PRIVATE_CLUSTER_ARGS: tuple[str, ...] = (
    "--slurm-status-command",
    "squeue",
    "--slurm-no-account",
    "--slurm-init-seconds-before-status-checks",
    "6",
    "--seconds-between-status-checks",
    "2",
)

REQUIRED_COMMANDS = (
    "munged",
    "slurmctld",
    "slurmd",
    "sbatch",
    "srun",
    "squeue",
    "sinfo",
    "scancel",
)
APT_PACKAGES = ("slurm-wlm", "munge")
PARTITION = "debug"
# gres.conf (read from beside slurm.conf) gives the node one GPU whose device
# file is /dev/null, so that jobs asking for a GPU are scheduled on machines
# without one (slurmd counts no GPU that lacks a File).
GRES_CONF = "Name=gpu File=/dev/null\n"


class SlurmUnavailable(RuntimeError):
    """This machine cannot host a private SLURM cluster (reason in the message)."""


class SlurmStartupError(RuntimeError):
    """The SLURM daemons were installed but did not come up."""


@dataclass(frozen=True)
class FinishedJob:
    """One line of the ``jobcomp/filetxt`` log; ``fields`` holds all its raw values."""

    job_id: int
    name: str
    state: str
    exit_code: int
    fields: Mapping[str, str]


@dataclass(frozen=True)
class SlurmCluster:
    """A running private cluster: where its files are and how to reach it."""

    workdir: Path
    conf_path: Path
    jobcomp_path: Path
    node_name: str
    partition: str
    env: dict[str, str]

    def finished_jobs(self) -> list[FinishedJob]:
        """Return every job that has finished so far, oldest first."""
        if not self.jobcomp_path.exists():
            return []
        return [
            parse_jobcomp_line(line) for line in self.jobcomp_path.read_text().splitlines() if line.strip()
        ]

    def job_field(self, job_id: int, field: str) -> str | None:
        """One field of ``scontrol show job`` (``Comment``, ``TresPerJob``...), None if unset.

        Finished jobs stay visible for MinJobAge (900 s) after they end.
        """
        record = self.run(["scontrol", "--oneliner", "show", "job", str(job_id)])
        match = re.search(rf"(?:^| ){re.escape(field)}=(\S*)", record)
        return match.group(1) if match else None

    def run(self, args: Sequence[str], timeout: float = 30) -> str:
        """Run a SLURM client command against this cluster and return its stdout."""
        return subprocess.run(
            list(args),
            env={**os.environ, **self.env},
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
        ).stdout


_JOBCOMP_FIELD = re.compile(r"(\w+)=(.*?)(?= \w+=|$)")


def parse_jobcomp_line(line: str) -> FinishedJob:
    """Parse one ``jobcomp/filetxt`` line of ``Key=Value`` fields.

    Values may contain spaces (a work dir, a job name), so a value runs until
    the next `` Key=``. ``ExitCode`` is ``<exit status>:<signal>``.
    """
    fields = dict(_JOBCOMP_FIELD.findall(line.strip()))
    status, _, _signal = fields["ExitCode"].partition(":")
    return FinishedJob(
        job_id=int(fields["JobId"]),
        name=fields["Name"],
        state=fields["JobState"],
        exit_code=int(status),
        fields=fields,
    )


def ensure_slurm_installed() -> None:
    """Install ``slurm-wlm`` and ``munge`` with apt when their commands are missing.

    Raises SlurmUnavailable when that is impossible (not root, no apt-get,
    the installation fails).
    """
    if os.geteuid() != 0:
        raise SlurmUnavailable("a private SLURM cluster needs root (slurmd runs jobs as root)")
    if all(shutil.which(command) for command in REQUIRED_COMMANDS):
        return
    if shutil.which("apt-get") is None:
        raise SlurmUnavailable("SLURM is not installed and there is no apt-get to install it")
    apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", *APT_PACKAGES],
    ):
        result = subprocess.run(command, check=False, env=apt_env, capture_output=True, text=True)
        if result.returncode != 0:
            raise SlurmUnavailable(
                f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-2000:]}"
            )
    missing = [command for command in REQUIRED_COMMANDS if shutil.which(command) is None]
    if missing:
        raise SlurmUnavailable(f"installed {APT_PACKAGES} but still missing: {missing}")


def ensure_slurm_plugin() -> None:
    """Raise SlurmUnavailable unless Snakemake's SLURM executor plugin is installed."""
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        raise SlurmUnavailable("pip install snakemake-executor-plugin-slurm to submit through SLURM")


def _free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _real_memory_mb() -> int:
    """Memory to declare for the node: 90 % of MemTotal, so slurmd accepts it."""
    meminfo = Path("/proc/meminfo").read_text()
    total_kb = int(re.search(r"^MemTotal:\s+(\d+) kB", meminfo, re.MULTILINE).group(1))
    return total_kb * 9 // 10 // 1024


def render_slurm_conf(
    *,
    node_name: str,
    cpus: int,
    real_memory_mb: int,
    state_dir: Path,
    munge_socket: Path,
    jobcomp_path: Path,
    ctld_port: int,
    slurmd_port: int,
) -> str:
    """Return a slurm.conf for one node on 127.0.0.1 without cgroups, systemd or slurmdbd."""
    return f"""\
ClusterName=pan-test
SlurmctldHost={node_name}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={state_dir / "ctld"}
SlurmdSpoolDir={state_dir / "slurmd"}
SlurmctldPidFile={state_dir / "slurmctld.pid"}
SlurmdPidFile={state_dir / "slurmd.pid"}
SlurmctldLogFile={state_dir / "slurmctld.log"}
SlurmdLogFile={state_dir / "slurmd.log"}
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={jobcomp_path}
GresTypes=gpu
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=1024
ReturnToService=2
MinJobAge=900
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
MailProg=/bin/true
SchedulerParameters=batch_sched_delay=0
NodeName={node_name} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={real_memory_mb} Gres=gpu:1 State=UNKNOWN
PartitionName={PARTITION} Nodes={node_name} Default=YES MaxTime=INFINITE State=UP
"""


def _write_srun_shim(bin_dir: Path, conf_path: Path) -> Path:
    """Write an ``srun`` that finds ``conf_path`` without ``SLURM_CONF``; return its dir.

    Inside a job the slurm-jobstep plugin starts the rule with a nested
    ``srun`` whose environment it strips of every ``SLURM_*`` variable but the
    job's identity, ``SLURM_CONF`` included. A real cluster's ``srun`` then
    reads /etc/slurm/slurm.conf; this cluster's config lives elsewhere, so
    ``bin_dir`` goes first on the PATH that jobs inherit.
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "srun"
    shim.write_text(f'#!/bin/sh\nSLURM_CONF={conf_path} exec {shutil.which("srun")} "$@"\n')
    shim.chmod(0o755)
    return bin_dir


def _stop_by_pid_file(pid_file: Path, timeout: float = 15) -> None:
    """SIGTERM the process named in ``pid_file``; SIGKILL it if it outlives ``timeout``."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _tail(path: Path, lines: int = 20) -> str:
    """Return the last ``lines`` lines of ``path``, or a note that it is missing."""
    if not path.exists():
        return f"({path} does not exist)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _start_daemon(command: Sequence[str], env: Mapping[str, str], log: Path) -> None:
    """Run a self-daemonizing command and raise SlurmStartupError if it fails."""
    result = subprocess.run(list(command), check=False, env=dict(env), capture_output=True, text=True)
    if result.returncode != 0:
        raise SlurmStartupError(
            f"{command[0]} exited with {result.returncode}: {result.stderr.strip()}\n"
            f"last lines of {log}:\n{_tail(log)}"
        )


def _wait_for_idle_node(cluster: SlurmCluster, state_dir: Path, timeout: float = 60) -> None:
    """Poll ``sinfo`` until the node is idle, i.e. ready to run jobs."""
    deadline = time.monotonic() + timeout
    state = "(no answer)"
    while time.monotonic() < deadline:
        with contextlib.suppress(subprocess.SubprocessError):
            state = cluster.run(["sinfo", "--noheader", "--Node", "--format=%t"]).strip()
            if state == "idle":
                return
        time.sleep(0.5)
    raise SlurmStartupError(
        f"node {cluster.node_name} not idle after {timeout:.0f} s (state: {state})\n"
        f"slurmctld.log:\n{_tail(state_dir / 'slurmctld.log')}\n"
        f"slurmd.log:\n{_tail(state_dir / 'slurmd.log')}"
    )


def _cancel_all_jobs(cluster: SlurmCluster, timeout: float = 30) -> None:
    """Cancel every job left on the cluster and wait until none is running.

    Stopping slurmd under a running job would leave its slurmstepd behind.
    Does nothing when slurmctld does not answer (it never came up).
    """
    deadline = time.monotonic() + timeout
    with contextlib.suppress(subprocess.SubprocessError, OSError):
        cluster.run(["scancel", f"--partition={PARTITION}"])
        while time.monotonic() < deadline:
            if not cluster.run(["squeue", "--noheader", "--states=RUNNING,COMPLETING"]).strip():
                return
            time.sleep(0.5)


@contextlib.contextmanager
def private_slurm(workdir: Path) -> Iterator[SlurmCluster]:
    """Run a private one-node SLURM cluster whose files live under ``workdir``.

    Raises SlurmUnavailable when the machine cannot host it, and
    SlurmStartupError when the daemons were started but did not come up.
    On exit, cancels any job left and stops the daemons it started.
    """
    ensure_slurm_installed()
    workdir = Path(workdir).resolve()
    state_dir = workdir / "state"
    for directory in (state_dir / "ctld", state_dir / "slurmd"):
        directory.mkdir(parents=True, exist_ok=True)
    munge_key = state_dir / "munge.key"
    munge_key.write_bytes(os.urandom(1024))
    munge_key.chmod(0o600)
    node_name = socket.gethostname().split(".")[0]
    conf_path = workdir / "slurm.conf"
    cluster = SlurmCluster(
        workdir=workdir,
        conf_path=conf_path,
        jobcomp_path=workdir / "jobcomp.log",
        node_name=node_name,
        partition=PARTITION,
        env={
            "SLURM_CONF": str(conf_path),
            "PATH": f"{_write_srun_shim(workdir / 'bin', conf_path)}{os.pathsep}{os.environ['PATH']}",
        },
    )
    daemon_env = {**os.environ, **cluster.env}

    # Clean-up runs in reverse: cancel jobs, stop slurmd, slurmctld, munged.
    with contextlib.ExitStack() as cleanup:
        # munged insists that every directory above its socket be searchable
        # by all users, which a pytest tmp dir (mode 0700) is not.
        munge_dir = Path(tempfile.mkdtemp(prefix="pan-munge-"))
        cleanup.callback(shutil.rmtree, munge_dir, ignore_errors=True)
        munge_dir.chmod(0o755)
        munge_socket = munge_dir / "munge.socket"
        conf_path.write_text(
            render_slurm_conf(
                node_name=node_name,
                cpus=os.cpu_count() or 1,
                real_memory_mb=_real_memory_mb(),
                state_dir=state_dir,
                munge_socket=munge_socket,
                jobcomp_path=cluster.jobcomp_path,
                ctld_port=_free_port(),
                slurmd_port=_free_port(),
            )
        )
        (workdir / "gres.conf").write_text(GRES_CONF)
        for pid_file in (munge_dir / "munged.pid", state_dir / "slurmctld.pid", state_dir / "slurmd.pid"):
            cleanup.callback(_stop_by_pid_file, pid_file)
        cleanup.callback(_cancel_all_jobs, cluster)

        _start_daemon(
            [
                "munged",
                f"--socket={munge_socket}",
                f"--key-file={munge_key}",
                f"--pid-file={munge_dir / 'munged.pid'}",
                f"--log-file={state_dir / 'munged.log'}",
                f"--seed-file={state_dir / 'munged.seed'}",
            ],
            daemon_env,
            state_dir / "munged.log",
        )
        _start_daemon(["slurmctld"], daemon_env, state_dir / "slurmctld.log")
        _start_daemon(["slurmd", "-N", node_name], daemon_env, state_dir / "slurmd.log")
        _wait_for_idle_node(cluster, state_dir)
        yield cluster


_SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+)")
_RUN_ID = re.compile(r"SLURM run ID: (\S+)")


def submitted_job_ids(log: str) -> list[int]:
    """Return the SLURM job ids that a Snakemake log reports, in submission order."""
    return [int(job_id) for job_id in _SUBMITTED.findall(log)]


def slurm_run_id(log: str) -> str:
    """Return the run id of a Snakemake log: the SLURM job name of all its jobs."""
    match = _RUN_ID.search(log)
    if match is None:
        raise ValueError("no 'SLURM run ID' in the Snakemake log")
    return match.group(1)


def run_snakemake(
    args: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m snakemake *args`` in ``cwd`` with ``env`` added to os.environ.

    stdout and stderr are merged into ``stdout``, so a failing test can show
    Snakemake's whole log. The caller checks ``returncode``.
    """
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        check=False,
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


def run_on_slurm(
    cluster: SlurmCluster,
    cwd: Path,
    args: Sequence[str] = (),
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run Snakemake in ``cwd`` with the repository's slurm profile on ``cluster``."""
    return run_snakemake(
        ["--profile", str(SLURM_PROFILE), *PRIVATE_CLUSTER_ARGS, *args],
        cwd=cwd,
        env=cluster.env,
        timeout=timeout,
    )
