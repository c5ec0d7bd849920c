#!/usr/bin/env bash
# A one-node Slurm cluster on this host, for the tests marked `slurm` (tests/conftest.py starts it).
#   tests/slurm/cluster.sh up DIR     write DIR/slurm.conf, start munged, slurmctld, slurmd (as root);
#                                     print `export SLURM_CONF=DIR/slurm.conf` once the node is idle
#   tests/slurm/cluster.sh down DIR   stop the daemons it started, by their pids (DIR/*.pid)
# Needs Debian's slurm-wlm and munge (.ci/run installs them). State, spool and logs stay in DIR.
set -euo pipefail
cmd=${1:?up or down}; dir=$(realpath -m "${2:?state directory}")
if [[ $cmd == down ]]; then
  for p in slurmd slurmctld munged; do
    [[ -f $dir/$p.pid ]] && kill "$(cat "$dir/$p.pid")" 2>/dev/null || true
  done
  exit 0
fi
mkdir -p "$dir"/{state,spool,munge}
chown munge:munge "$dir/munge"; chmod 700 "$dir/munge"
[[ -f /etc/munge/munge.key ]] || { mungekey --create 2>/dev/null || /usr/sbin/create-munge-key -f; }
munged --socket="$dir/munge/munge.socket" --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munge/seed" -f
host=$(hostname -s)
read -r cpus mem < <(slurmd -C | awk '/NodeName/ {for (i=1;i<=NF;i++) {split($i,kv,"="); v[kv[1]]=kv[2]}; print v["CPUs"], v["RealMemory"]}')
cat > "$dir/slurm.conf" <<CONF
ClusterName=coop
SlurmctldHost=$host
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldPort=$((20000 + RANDOM % 20000))
SlurmdPort=$((40000 + RANDOM % 10000))
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
KillWait=5
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
export SLURM_CONF=$dir/slurm.conf
slurmctld -i
slurmd
for _ in $(seq 1 60); do
  if sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then echo "export SLURM_CONF=$dir/slurm.conf"; exit 0; fi
  sleep 0.5
done
echo "slurm did not come up; see $dir/*.log" >&2
exit 1
