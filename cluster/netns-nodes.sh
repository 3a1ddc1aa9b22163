#!/bin/sh
# Two (or more) simulated nodes on one Linux machine: one network namespace per "node" on a bridge, its link shaped
# with tc tbf (default 1 Gbit/s each way), and an rsh agent through which mpirun starts one orted per node inside
# its namespace with its own host name (a UTS namespace). The ranks of a node then talk over shared memory (vader);
# ranks on different nodes over TCP through the shaped link. Needs root (ip netns, tc); changes nothing outside the
# bridge, veths and namespaces it creates, and `down` removes them.
#
#   cluster/netns-nodes.sh up [NODES=2] [RATE=1gbit]   creates the nodes, writes runs/netns/hosts (4 slots each)
#   cluster/netns-nodes.sh mpirun ARGS...              mpirun across the nodes (adds the agent and the MCA options;
#                                                      BTL=... replaces the default btl list vader,tcp,self)
#   cluster/netns-nodes.sh down                        removes them
#   cluster/netns-nodes.sh rsh HOST COMMAND...         the rsh agent mpirun calls (not for direct use)
#
# Example: cluster/netns-nodes.sh up && cluster/netns-nodes.sh mpirun -n 8 --map-by node \
#              .build/release/adaptir-dist bench allreduce --sizes ipt-adaptir,ipt-full
# Names avoid '_' (ORTE's host-name parser rejects it). Node k (1-based) is 10.77.0.k, namespace arnode<k>, host
# name node<k>; the bridge is arbr0 at 10.77.0.254.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
hosts="$repo/runs/netns/hosts"
cmd=${1:-}
[ -n "$cmd" ] && shift

case "$cmd" in
up)
    nodes=${1:-2}
    rate=${2:-1gbit}
    ip link add arbr0 type bridge
    ip addr add 10.77.0.254/24 dev arbr0
    ip link set arbr0 up
    mkdir -p "$(dirname "$hosts")"
    : >"$hosts"
    k=1
    while [ "$k" -le "$nodes" ]; do
        ip netns add "arnode$k"
        ip link add "arv${k}n" type veth peer name "arv${k}b"
        ip link set "arv${k}b" master arbr0
        ip link set "arv${k}b" up
        ip link set "arv${k}n" netns "arnode$k"
        ip -n "arnode$k" addr add "10.77.0.$k/24" dev "arv${k}n"
        ip -n "arnode$k" link set "arv${k}n" up
        ip -n "arnode$k" link set lo up
        # Egress of each node; the bridge side is not shaped, so each direction of a node pair crosses one tbf.
        ip netns exec "arnode$k" tc qdisc replace dev "arv${k}n" root tbf rate "$rate" burst 256kb latency 100ms
        echo "10.77.0.$k slots=4" >>"$hosts"
        k=$((k + 1))
    done
    echo "netns-nodes: $nodes nodes at $rate each way; hostfile $hosts"
    ;;
down)
    # Processes left in a namespace (an orted that has not exited yet) keep it, and its veth, alive after
    # `ip netns del`; the next `up` would then fail with "File exists". Kill them, delete the veths explicitly
    # (deleting one end removes its peer), then the namespaces.
    for ns in $(ip netns list | awk '/^arnode[0-9]+/ { print $1 }'); do
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
        ip netns del "$ns"
    done
    for dev in $(ip -o link show | awk -F': ' '$2 ~ /^arv[0-9]+b(@|$)/ { sub(/@.*/, "", $2); print $2 }'); do
        ip link del "$dev" 2>/dev/null || true
    done
    ip link del arbr0 2>/dev/null || true
    echo "netns-nodes: removed"
    ;;
rsh)
    host=$1
    shift
    k=${host#10.77.0.}
    k=${k#node}
    ip netns list | grep -q "^arnode$k\b" || { echo "netns-nodes rsh: unknown host $host" >&2; exit 1; }
    exec ip netns exec "arnode$k" unshare --uts /bin/sh -c "hostname node$k; $*"
    ;;
mpirun)
    [ -s "$hosts" ] || { echo "netns-nodes: no $hosts; run '$0 up' first" >&2; exit 2; }
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    # rtc ^hwloc: orted once crashed writing the hwloc topology to shared memory across the namespaces.
    # mpi_yield_when_idle: the hostfile's slots are fictitious when the nodes share a few cores, and ranks that do not
    # know they are oversubscribed busy-poll without yielding (16 ms per small allreduce at 4 ranks on 2 cores).
    exec mpirun --hostfile "$hosts" --bind-to none --mca mpi_yield_when_idle 1 --mca plm_rsh_agent "$here/netns-nodes.sh rsh" --mca rtc ^hwloc \
        --mca btl "${BTL:-vader,tcp,self}" --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 \
        -x OPENBLAS_NUM_THREADS=1 "$@"
    ;;
*)
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
