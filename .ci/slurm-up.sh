#!/usr/bin/env bash
# A real one-node Slurm on this host for the `-m slurm` tests: munge, slurmctld and slurmd
# from Debian's packages, 4 logical GPUs (Gres=gpu:4), no accounting (zobench reads job state
# from squeue/scontrol, never sacct).
# Slurm 22.05 drops a GPU gres without File= ("Removing file-less GPU ... from final GRES
# list"), so each logical GPU is a character device that aliases /dev/null; Slurm then numbers
# them 0..3 and sets CUDA_VISIBLE_DEVICES per job, as on a real GPU node.
# Idempotent: returns at once when the node already answers idle or mixed. Needs root.
# Exit 1, saying why, when a daemon does not come up within its bounded wait.
set -euo pipefail
WAIT_S=${SLURM_UP_WAIT_S:-60}
HOST=$(hostname -s)

node_ready() { sinfo -h -N -n "$HOST" -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; }
if command -v sinfo >/dev/null && node_ready; then
  echo "slurm-up: $HOST already up" >&2; exit 0
fi
if ! command -v slurmctld >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "slurm-up: slurm is not installed and we are not root" >&2; exit 1; }
  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurmctld slurmd munge) >/dev/null
fi

CPUS=$(nproc)
MEM_MB=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=zobench-ci
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# No cgroups in a container: track processes through /proc, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:4 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
GPU_DIR=/var/lib/zobench-slurm
mkdir -p "$GPU_DIR"
for i in 0 1 2 3; do [ -c "$GPU_DIR/gpu$i" ] || mknod "$GPU_DIR/gpu$i" c 1 3; done
cat > /etc/slurm/gres.conf <<CONF
NodeName=$HOST Name=gpu File=$GPU_DIR/gpu[0-3]
CONF

if ! pgrep -x munged >/dev/null; then
  chown munge:munge /run/munge
  runuser -u munge -- /usr/sbin/munged
fi
pgrep -x slurmctld >/dev/null || /usr/sbin/slurmctld
pgrep -x slurmd >/dev/null || /usr/sbin/slurmd

for _ in $(seq "$WAIT_S"); do
  if node_ready; then echo "slurm-up: $HOST up ($CPUS CPUs, gpu:4)" >&2; exit 0; fi
  # A node left down or drained by an earlier configuration is resumed once it registers.
  if sinfo -h -N -n "$HOST" -o '%T' 2>/dev/null | grep -qE 'down|drain'; then
    scontrol update nodename="$HOST" state=resume 2>/dev/null || true
  fi
  sleep 1
done
echo "slurm-up: $HOST not idle after ${WAIT_S}s; sinfo: $(sinfo -N 2>&1 | tail -n +2)" >&2
tail -n 5 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1
