# Shared by scripts/setup, up, down and test: versions, cache locations, messages.
# shellcheck shell=bash

CHAT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHAT_CACHE_DIR=${CHAT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/chat-platform}
CHAT_KAFKA_VERSION=3.9.1
CHAT_KAFKA_HOME=${CHAT_KAFKA_HOME:-"$CHAT_CACHE_DIR/kafka-$CHAT_KAFKA_VERSION"}
CHAT_FERRETDB_VERSION=v1.24.0
CHAT_FERRETDB_BIN=${CHAT_FERRETDB_BIN:-"$CHAT_CACHE_DIR/ferretdb-$CHAT_FERRETDB_VERSION/ferretdb"}
# The tests' Python tools (tests/support/requirements.txt): setup makes the virtualenv, up runs
# the test peers with it; tests/CMakeLists.txt finds the same path (unless given
# CHAT_TEST_PYTHON).
CHAT_PYTHON_VENV=${CHAT_PYTHON_VENV:-"$CHAT_CACHE_DIR/python-venv"}

chat_say() {
    printf '[%s] %s\n' "$1" "$2"
}

chat_die() {
    printf '[%s] error: %s\n' "$1" "$2" >&2
    exit 1
}

chat_warn() {
    printf '[%s] warning: %s\n' "$1" "$2" >&2
}

# Where the local stack keeps its state, and the build tree its binaries come from.
CHAT_DEFAULT_STATE_DIR="$CHAT_ROOT/.run"
CHAT_DEFAULT_BUILD_DIR="$CHAT_ROOT/build/dev"

# chat_pid_alive PID: true if PID is a live process. A process that has exited (killed a
# moment ago, say) may linger as a zombie until its parent reaps it; that counts as dead.
chat_pid_alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)
    [ "$state" != "Z" ]
}

# chat_is_running PIDFILE: true if the pid in PIDFILE is a live process.
chat_is_running() {
    local pid
    [ -f "$1" ] || return 1
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && chat_pid_alive "$pid"
}

# chat_port_in_use PORT: true if something listens on 127.0.0.1:PORT (or all interfaces).
chat_port_in_use() {
    ss -Hltn "sport = :$1" 2>/dev/null | grep . >/dev/null
}
