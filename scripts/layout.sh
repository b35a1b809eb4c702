# The local stack's layout, in one place: its parts and their start order, the ports each
# part takes (offsets from the port base), and its pid file. scripts/up and scripts/down
# source it after lib.sh; up writes the resulting ports and the pid directory into
# stack.env, which is where the platform's tests read them.
# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are for the scripts that source this file

# Port offsets from the base (--port-base, 7400 by default).
CHAT_OFFSET_KAFKA=0
CHAT_OFFSET_KAFKA_CONTROLLER=1
CHAT_OFFSET_FERRETDB=2       # MongoDB wire protocol
CHAT_OFFSET_REDIS=3
CHAT_OFFSET_FERRETDB_DEBUG=4
CHAT_OFFSET_API=5            # the server API's HTTP listener
# The notify tests' third-party peers (up --test-peers; tests/support/peers.py).
CHAT_OFFSET_PEERS_PUSH=6     # a Web Push service
CHAT_OFFSET_PEERS_WEBHOOK=7  # a Standard Webhooks receiver
CHAT_OFFSET_PEERS_SMTP=8     # an SMTP sink
CHAT_OFFSET_PEERS_CONTROL=9  # their control API (what arrived, programmed faults)
CHAT_OFFSET_GATEWAY=10       # gateway N's WebSocket listener: +10+N
CHAT_OFFSET_OPS_MESSAGE=20   # ops ports: /healthz, /readyz, /metrics
CHAT_OFFSET_OPS_BROADCAST=21
CHAT_OFFSET_OPS_API=22
CHAT_OFFSET_OPS_MODERATION=23
CHAT_OFFSET_OPS_NOTIFY=24
# Monitoring (up --monitoring): Prometheus and the Kafka lag exporter. +27..+29: free.
CHAT_OFFSET_PROMETHEUS=25
CHAT_OFFSET_LAG_EXPORTER=26
CHAT_OFFSET_OPS_GATEWAY=30   # gateway N's ops port: +30+N
# The second and third Kafka brokers (up --kafka-brokers 3): broker N (2, 3) listens on
# +40+2(N-2), its controller on the port after.
CHAT_OFFSET_KAFKA_NODE2=40
CHAT_OFFSET_KAFKA_NODE3=42
# up --kafka-fault-path: each broker's listener of gateway 0's own (broker N: +43+N), so that a
# fault test can cut gateway 0 from Kafka alone. +47..+49: free.
CHAT_OFFSET_KAFKA_GW0=44
CHAT_LAYOUT_SPAN=50          # the stack takes the ports base .. base+49
CHAT_KAFKA_NODES_MAX=3       # brokers 1..3
CHAT_GATEWAYS_MAX=10         # gateways 0..9 fit +10..+19 and +30..+39

# chat_layout_infra: the infrastructure parts, in start order (kafka-2 and kafka-3 only run
# with up --kafka-brokers 3). The test peers (part `peers`,
# only with up --test-peers) start after them, before the services.
chat_layout_infra() {
    printf '%s\n' redis ferretdb kafka kafka-2 kafka-3
}

# chat_layout_services GATEWAYS: the platform's services, in start order. Gateways come
# last, once the services behind them are ready; down stops in reverse, so that gateways take
# no more sends while the message and broadcast services finish theirs.
chat_layout_services() {
    local i
    printf '%s\n' message broadcast api moderation notify
    for ((i = 0; i < $1; i++)); do
        printf 'gateway-%d\n' "$i"
    done
}

# chat_layout_monitoring: the monitoring parts (up --monitoring), in start order, after the
# services: the lag exporter, then Prometheus, which scrapes everything before.
chat_layout_monitoring() {
    printf '%s\n' lag-exporter prometheus
}

# chat_layout_ports PART BASE: the ports PART listens on, space-separated; fails if PART is
# not a part of the layout.
chat_layout_ports() {
    local part=$1 base=$2 i
    case "$part" in
    redis) echo "$((base + CHAT_OFFSET_REDIS))" ;;
    ferretdb) echo "$((base + CHAT_OFFSET_FERRETDB)) $((base + CHAT_OFFSET_FERRETDB_DEBUG))" ;;
    kafka) chat_kafka_ports 1 "$base" ;;
    kafka-[23]) chat_kafka_ports "${part#kafka-}" "$base" ;;
    message) echo "$((base + CHAT_OFFSET_OPS_MESSAGE))" ;;
    broadcast) echo "$((base + CHAT_OFFSET_OPS_BROADCAST))" ;;
    api) echo "$((base + CHAT_OFFSET_API)) $((base + CHAT_OFFSET_OPS_API))" ;;
    moderation) echo "$((base + CHAT_OFFSET_OPS_MODERATION))" ;;
    notify) echo "$((base + CHAT_OFFSET_OPS_NOTIFY))" ;;
    peers)
        echo "$((base + CHAT_OFFSET_PEERS_PUSH)) $((base + CHAT_OFFSET_PEERS_WEBHOOK))" \
            "$((base + CHAT_OFFSET_PEERS_SMTP)) $((base + CHAT_OFFSET_PEERS_CONTROL))"
        ;;
    lag-exporter) echo "$((base + CHAT_OFFSET_LAG_EXPORTER))" ;;
    prometheus) echo "$((base + CHAT_OFFSET_PROMETHEUS))" ;;
    gateway-[0-9]) # one digit: CHAT_GATEWAYS_MAX is 10
        i=${part#gateway-}
        echo "$((base + CHAT_OFFSET_GATEWAY + i)) $((base + CHAT_OFFSET_OPS_GATEWAY + i))"
        ;;
    *) return 1 ;;
    esac
}

# chat_kafka_ports NODE BASE: Kafka node NODE's (1-3) broker and controller ports, then the port
# of its listener for gateway 0 (up --kafka-fault-path), space-separated.
chat_kafka_ports() {
    local node=$1 base=$2 off
    case "$node" in
    1) off=$CHAT_OFFSET_KAFKA ;;
    2) off=$CHAT_OFFSET_KAFKA_NODE2 ;;
    3) off=$CHAT_OFFSET_KAFKA_NODE3 ;;
    *) return 1 ;;
    esac
    # Node 1's controller port predates the others' layout: +1, not the port after +0's pair.
    if [ "$node" = 1 ]; then
        echo "$((base + off)) $((base + CHAT_OFFSET_KAFKA_CONTROLLER)) $((base + CHAT_OFFSET_KAFKA_GW0 + node - 1))"
    else
        echo "$((base + off)) $((base + off + 1)) $((base + CHAT_OFFSET_KAFKA_GW0 + node - 1))"
    fi
}

# chat_layout_is_part NAME: true if NAME is a part of the layout.
chat_layout_is_part() {
    chat_layout_ports "$1" 0 >/dev/null
}

# Pid files: PIDS/PART.pid (PIDS is <state>/pids). PIDS/order lists the parts in the order up
# first started them, one a line; down stops them in reverse.

# chat_pid_file PIDS PART: the path of PART's pid file.
chat_pid_file() {
    printf '%s/%s.pid\n' "$1" "$2"
}

# chat_order_add PIDS PART: records PART in the start order unless it is there already.
# Fails if the order file cannot be written.
chat_order_add() {
    local f="$1/order"
    if [ -f "$f" ] && grep -qxF -- "$2" "$f"; then
        return 0
    fi
    printf '%s\n' "$2" >>"$f"
}

# chat_stop_order PIDS: the parts that have a pid file, one a line, in the order to stop them:
# the reverse of the recorded start order. Parts the order file lacks (it was removed by hand)
# count as started last, in the layout's order, and pid files of no part of the layout after
# them.
chat_stop_order() {
    local pids=$1 part pf i
    local -a order=()
    local -A listed=()
    if [ -f "$pids/order" ]; then
        mapfile -t order <"$pids/order"
    fi
    for part in "${order[@]}"; do
        listed[$part]=1
    done
    for part in $(chat_layout_infra) $(chat_layout_services "$CHAT_GATEWAYS_MAX") \
        $(chat_layout_monitoring); do
        if [ -z "${listed[$part]:-}" ] && [ -f "$pids/$part.pid" ]; then
            order+=("$part")
            listed[$part]=1
        fi
    done
    for pf in "$pids"/*.pid; do
        [ -f "$pf" ] || continue
        part=$(basename "$pf" .pid)
        if [ -z "${listed[$part]:-}" ]; then
            order+=("$part")
            listed[$part]=1
        fi
    done
    for ((i = ${#order[@]} - 1; i >= 0; i--)); do
        if [ -f "$pids/${order[$i]}.pid" ]; then
            printf '%s\n' "${order[$i]}"
        fi
    done
}

# chat_pids_adopt_numbered PIDS WHO: an earlier scripts/up named pid files NN-PART.pid, NN
# being the start order (10-redis ... 60-gateway-1). Renames them to PART.pid and records
# their order, so that up and down (WHO, for the message) treat a stack started by the earlier
# up as their own. A numbered file is dropped if PART.pid names a running process already.
chat_pids_adopt_numbered() {
    local pids=$1 who=$2 pf part
    local -a files=()
    mapfile -t files < <(find "$pids" -maxdepth 1 -name '[0-9][0-9]-*.pid' | LC_ALL=C sort)
    [ ${#files[@]} -gt 0 ] || return 0
    chat_say "$who" "renaming the pid files of an earlier scripts/up (NN-part.pid -> part.pid)"
    for pf in "${files[@]}"; do
        part=$(basename "$pf" .pid)
        part=${part#[0-9][0-9]-}
        if chat_is_running "$(chat_pid_file "$pids" "$part")"; then
            rm -f "$pf"
        else
            mv -f "$pf" "$(chat_pid_file "$pids" "$part")"
        fi
        chat_order_add "$pids" "$part" || return 1
    done
}
