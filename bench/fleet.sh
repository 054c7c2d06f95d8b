#!/usr/bin/env bash
# fleet.sh BUILD_DIR - the control plane's benchmark: one `myna serve` starts
# 200 simulator instances, each with its own `myna bot`. Measures the time
# from the start of the process until every bot is running (its first
# heartbeat came), the summed memory of the master and its bots, one
# message answered through the simulator, and a clean SIGTERM. Baseline in
# the same run: myna_fleet_baseline, 200 processes with the same shared
# libraries fork+exec'd and held, nothing of Myna in them. bench/README.md
# ("fleet") explains the figures and the targets.
#
# Only 127.0.0.1; every wait bounded, the whole run under 90 s (a watchdog
# ends it); the temp dir and every process started here are gone when it
# exits. Exit: 0 measured (targets may still MISS), 1 it could not measure,
# or Myna failed (a bot never ran, no reply, an exit status other than 0
# after SIGTERM, a bot left behind), 2 usage.
#
# Environment knob: BENCH_FLEET_BOTS (200). Change it only to explore: the
# targets assume the default.

# shellcheck disable=SC2317  # cleanup runs from the EXIT trap
set -euo pipefail

readonly START_TARGET_S=10       # the issue: all running in under 10 s ...
readonly MEMORY_TARGET_MB=1024   # ... and under 1 GB together
readonly READY_TIMEOUT_S=15      # for the event=ready line
readonly RUNNING_TIMEOUT_S=20    # from the process start to every bot running (twice the target)
readonly TALK_TIMEOUT_S=10       # for the FAQ reply through the simulator
readonly STOP_TIMEOUT_S=30       # SIGTERM to exit: the issue's bound
readonly WATCHDOG_S=88           # the whole script
readonly START_BATCH=20 START_TICK_MS=100   # the supervisor's start queue (supervisor.h)

usage() {
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
}

[ $# -eq 1 ] || usage
[ -d "$1" ] || { echo "fleet.sh: no build directory '$1'" >&2; exit 2; }
build=$(cd "$1" && pwd)
bots=${BENCH_FLEET_BOTS:-200}
if ! [[ $bots =~ ^[0-9]+$ ]] || [ "$bots" -lt 1 ] || [ "$bots" -gt 1000 ]; then
    echo "fleet.sh: BENCH_FLEET_BOTS must be an integer in 1..1000, not '$bots'" >&2
    exit 2
fi
myna=$build/myna
baseline=$build/bench/myna_fleet_baseline
for f in "$myna" "$baseline"; do
    [ -x "$f" ] || { echo "fleet.sh: missing $f (build with -DMYNA_BENCH=ON)" >&2; exit 1; }
done
command -v curl >/dev/null || { echo "fleet.sh: needs curl" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/myna-fleet.XXXXXX")
myna_pid="" watchdog_pid="" bot_pids=()

# Kills what is left: the master and its bots (SIGKILL; a bot whose master
# is gone also exits by itself at the doorbell's EOF), the watchdog.
cleanup() {
    local p kids=""
    if [ -n "$myna_pid" ] && kill -0 "$myna_pid" 2>/dev/null; then
        kids=$(cat /proc/"$myna_pid"/task/*/children 2>/dev/null || true)
        kill -KILL "$myna_pid" 2>/dev/null || true
        wait "$myna_pid" 2>/dev/null || true
    fi
    # shellcheck disable=SC2086  # space-separated pids: words on purpose
    for p in $kids "${bot_pids[@]+"${bot_pids[@]}"}"; do
        if is_bot "$p"; then kill -KILL "$p" 2>/dev/null || true; fi
    done
    if [ -n "$watchdog_pid" ]; then
        kill -TERM "$watchdog_pid" 2>/dev/null || true
        wait "$watchdog_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'echo "fleet.sh: still running after ${WATCHDOG_S}s; stopped" >&2; exit 1' ALRM

# The watchdog: SIGALRM to this script after WATCHDOG_S (its sleep dies with it).
(
    trap 'kill "$s" 2>/dev/null; exit 0' TERM
    sleep "$WATCHDOG_S" &
    s=$!
    wait "$s" && kill -ALRM $$
) &
watchdog_pid=$!

# ---- helpers ----------------------------------------------------------------

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# is_bot PID: PID is a `myna bot` process (a pid read earlier may be reused).
is_bot() {
    [ -e "/proc/$1" ] && { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null | grep -q ' bot --instance '
}

# sum_kb FILE KEY PID...: KEY's kB summed over /proc/PID/FILE of the PIDs.
sum_kb() {
    local file=$1 key=$2 p
    shift 2
    for p in "$@"; do echo "/proc/$p/$file"; done | xargs -r cat 2>/dev/null |
        awk -v k="$key:" '$1 == k { s += $2 } END { print s + 0 }'
}

# mb KB [N [DECIMALS]]: KB / N in MiB
mb() { awk -v kb="$1" -v n="${2:-1}" -v d="${3:-1}" 'BEGIN { printf "%.*f", d, kb / 1024 / n }'; }
calc() { awk "BEGIN { printf \"%.2f\n\", ($1) }"; }
holds() { awk "BEGIN { exit !($1) }"; }
kv() {
    awk -v k="$1" '{ for (i = 1; i <= NF; i++) { n = index($i, "=");
        if (substr($i, 1, n - 1) == k) { print substr($i, n + 1); exit } } }' <<<"$2"
}
out() { printf '%-6s %s\n' "$1" "${*:2}"; }   # out NAME WORDS...: one result line
target() {
    if holds "$2"; then echo "PASS $1 ($3)"; else echo "MISS $1 ($3)"; fi
}

# admin GET|POST PATH [BODY]: the admin listener, with the token; the body
# of the answer on stdout, empty on any failure.
admin() {
    curl -s -f -m 5 -H @"$tmp/auth" -H 'Content-Type: application/json' -X "$1" \
        ${3:+--data-binary "$3"} "http://$admin_addr$2" 2>/dev/null || true
}

# ---- the run ------------------------------------------------------------------

load1=$(cut -d ' ' -f 1 /proc/loadavg)
echo "machine: $(nproc) cores, load average $load1 before the run"
if holds "$load1 >= 0.5"; then
    echo "NOTE: other work is using the CPU; rerun on a quiet machine before trusting the figures"
fi
echo "== fleet: $bots sim instances, one \`myna serve --bots 1\`, 127.0.0.1 =="

# Baseline: the same shared libraries in as many processes, at once (the
# fork+exec floor), then started and paced like the supervisor's queue.
exec_line=$(timeout -k 5 25 "$baseline" --procs "$bots" --timeout 10) || true
libs_line=$(timeout -k 5 25 "$baseline" --procs "$bots" --init --batch "$START_BATCH" \
    --tick-ms "$START_TICK_MS" --timeout 10) || true
if [ -z "$exec_line" ] || [ -z "$libs_line" ]; then
    echo "fleet.sh: the baseline did not run" >&2
    exit 1
fi
echo "exec   $exec_line"
echo "libs   $libs_line"

# 200 instances of the simulator, each with a one-entry FAQ and no batch
# window, so that a message is answered at once.
{
    printf '['
    for i in $(seq 1 "$bots"); do
        [ "$i" -gt 1 ] && printf ','
        printf '{"id":"fleet-%03d","name":"Fleet %d","provider":"sim","batch":{"window_ms":0,"max":10},"faq":[{"q":["when are you open"],"a":"Open 9-18, bot %d."}]}' \
            "$i" "$i" "$i"
    done
    printf ']\n'
} >"$tmp/instances.json"
# The first admin's token: random, for this run only, kept in a header file
# (not on a command line).
token="myna_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
printf 'Authorization: Bearer %s\n' "$token" >"$tmp/auth"
chmod 600 "$tmp/auth"

# fleet_run NAME: starts `myna serve` on $tmp/var, waits for its ready line
# and for every bot running, reads the memory of the master and its bots,
# with NAME "first" has fleet-001 answer one message, then stops it with
# SIGTERM. Prints its lines; sets ready_ms, running_ms (empty when not all
# ran), rss_sum, pss_sum, n_kids, bots_rss, bots_pss. Returns 1 when Myna
# failed (the figures printed are then partial).
fleet_run() {
    local name=$1 t0 t1 t2 p running=0 talk_ms="-" stop_ms exit_status=0 left=0 rc=0
    local master_rss master_pss log=$tmp/$1.log
    admin_addr="" ready_ms="" running_ms="" n_kids=0 bots_rss=0 bots_pss=0 rss_sum=0 pss_sum=0
    : >"$log"
    t0=$(now_ms)
    MYNA_ADMIN_TOKEN=$token "$myna" serve --public 127.0.0.1:0 --admin 127.0.0.1:0 \
        --data "$tmp/var" --instances "$tmp/instances.json" --bots 1 \
        >"$tmp/$name.out" 2>"$log" &
    myna_pid=$!

    # event=ready public=127.0.0.1:P admin=127.0.0.1:Q
    while [ $(($(now_ms) - t0)) -lt $((READY_TIMEOUT_S * 1000)) ] && kill -0 "$myna_pid" 2>/dev/null; do
        admin_addr=$(sed -nE 's/.*event=ready public=[^ ]+ admin=(127\.0\.0\.1:[0-9]+).*/\1/p' \
            "$log" | head -n 1)
        if [ -n "$admin_addr" ]; then
            ready_ms=$(($(now_ms) - t0))
            break
        fi
        sleep 0.02
    done
    if [ -z "$admin_addr" ]; then
        echo "fleet.sh: $name: no event=ready line within ${READY_TIMEOUT_S}s; last log lines:" >&2
        tail -n 20 "$log" >&2
        return 1
    fi

    # Every bot running: the admin API's list, whose state is the
    # supervisor's (running = its first heartbeat came). Polled every 50 ms.
    while [ $(($(now_ms) - t0)) -lt $((RUNNING_TIMEOUT_S * 1000)) ] && kill -0 "$myna_pid" 2>/dev/null; do
        running=$({ admin GET /admin/whatsapp/instances | grep -o '"state":"running"' || true; } | wc -l)
        if [ "$running" -ge "$bots" ]; then
            running_ms=$(($(now_ms) - t0))
            break
        fi
        sleep 0.05
    done

    # Memory, at once: the master and every child (all of them bots).
    # shellcheck disable=SC2207  # space-separated pids: words on purpose
    bot_pids=($(cat /proc/"$myna_pid"/task/*/children 2>/dev/null || true))
    n_kids=${#bot_pids[@]}
    master_rss=$(sum_kb status VmRSS "$myna_pid")
    master_pss=$(sum_kb smaps_rollup Pss "$myna_pid")
    bots_rss=$(sum_kb status VmRSS "${bot_pids[@]+"${bot_pids[@]}"}")
    bots_pss=$(sum_kb smaps_rollup Pss "${bot_pids[@]+"${bot_pids[@]}"}")
    rss_sum=$((master_rss + bots_rss))
    pss_sum=$((master_pss + bots_pss))
    if [ -z "$running_ms" ]; then
        echo "fleet.sh: $name: $running of $bots bots running after ${RUNNING_TIMEOUT_S}s; last log lines:" >&2
        grep -v 'event=bot_started' "$log" | tail -n 10 >&2
        rc=1
    fi

    # One bot at work: a customer's message through the simulator, the
    # FAQ's answer back (signed webhook, ingress, doorbell, bot, outbox,
    # fake Graph API).
    if [ "$name" = first ] && [ -n "$running_ms" ]; then
        talk_ms="?"
        t1=$(now_ms)
        if [ -n "$(admin POST /sim/fleet-001/send '{"from":"15550000001","text":"when are you open?"}')" ]; then
            while [ $(($(now_ms) - t1)) -lt $((TALK_TIMEOUT_S * 1000)) ]; do
                if admin GET '/sim/fleet-001/events?contact=15550000001&after=0' |
                    grep -q 'Open 9-18, bot 1\.'; then
                    talk_ms=$(($(now_ms) - t1))
                    break
                fi
                sleep 0.02
            done
        fi
        if [ "$talk_ms" = "?" ]; then
            echo "fleet.sh: $name: fleet-001 did not answer within ${TALK_TIMEOUT_S}s" >&2
            rc=1
        fi
    fi

    # SIGTERM: every bot stops, then the master exits 0.
    t2=$(now_ms)
    kill -TERM "$myna_pid" 2>/dev/null || true
    while kill -0 "$myna_pid" 2>/dev/null && [ $(($(now_ms) - t2)) -lt $((STOP_TIMEOUT_S * 1000)) ]; do
        sleep 0.05
    done
    stop_ms=$(($(now_ms) - t2))
    if kill -0 "$myna_pid" 2>/dev/null; then
        echo "fleet.sh: $name: myna still running ${STOP_TIMEOUT_S}s after SIGTERM; killing it" >&2
        kill -KILL "$myna_pid" 2>/dev/null || true
    fi
    wait "$myna_pid" 2>/dev/null || exit_status=$?
    myna_pid=""
    for p in "${bot_pids[@]+"${bot_pids[@]}"}"; do
        if is_bot "$p"; then
            left=$((left + 1))
            kill -KILL "$p" 2>/dev/null || true
        fi
    done
    bot_pids=()
    if [ "$exit_status" -ne 0 ] || [ "$left" -gt 0 ]; then
        echo "fleet.sh: $name: after SIGTERM: exit status $exit_status (want 0), $left bots left behind; last log lines:" >&2
        tail -n 10 "$log" >&2
        rc=1
    fi

    local per=$((n_kids > 0 ? n_kids : 1)) fleet_ms="?"
    [ -z "$running_ms" ] || fleet_ms=$((running_ms - ready_ms))
    out "$name" "running=$running/$bots ready_ms=$ready_ms" \
        "running_ms=${running_ms:-?} fleet_ms=$fleet_ms" \
        "rss_sum_mb=$(mb "$rss_sum") pss_sum_mb=$(mb "$pss_sum")"
    out "$name" "master_rss_mb=$(mb "$master_rss") master_pss_mb=$(mb "$master_pss")" \
        "bots=$n_kids rss_per_bot_mb=$(mb "$bots_rss" "$per") pss_per_bot_mb=$(mb "$bots_pss" "$per")"
    out "$name" "talk_ms=$talk_ms stop_ms=$stop_ms exit=$exit_status bots_left=$left"
    return "$rc"
}

status=0
# The first start: every instance imported, every store created.
fleet_run first || status=1
[ -n "$running_ms" ] && [ "$n_kids" -gt 0 ] || exit 1
first_ready_ms=$ready_ms first_running_ms=$running_ms
first_rss_sum=$rss_sum first_pss_sum=$pss_sum
per_bot_rss=$(mb "$bots_rss" "$n_kids" 2)
per_bot_pss=$(mb "$bots_pss" "$n_kids" 2)
# The same fleet started again: the files exist (a reboot, an upgrade).
fleet_run again || status=1
again_s="?"
[ -z "$running_ms" ] || again_s=$(calc "$running_ms / 1000")

echo "ratio  fleet_ms/libs_start_ms=$(calc "$((first_running_ms - first_ready_ms)) / $(kv start_ms "$libs_line")")" \
    "rss_per_bot/libs_rss_per_proc=$(calc "$per_bot_rss / $(kv rss_per_proc_mb "$libs_line")")" \
    "pss_per_bot/libs_pss_per_proc=$(calc "$per_bot_pss / $(kv pss_per_proc_mb "$libs_line")")"
echo "first  own_mb_per_bot: rss=$(calc "$per_bot_rss - $(kv rss_per_proc_mb "$libs_line")")" \
    "pss=$(calc "$per_bot_pss - $(kv pss_per_proc_mb "$libs_line")") (a bot minus a process with the libraries started)"
target "all running < ${START_TARGET_S} s" "$first_running_ms < $START_TARGET_S * 1000" \
    "first start $(calc "$first_running_ms / 1000") s, ready at $(calc "$first_ready_ms / 1000") s; again $again_s s"
target "rss sum < 1 GB" "$first_rss_sum / 1024 < $MEMORY_TARGET_MB" \
    "$(mb "$first_rss_sum") MB summed VmRSS; the same processes with only the libraries: $(kv rss_sum_mb "$libs_line") MB"
target "memory (pss sum) < 1 GB" "$first_pss_sum / 1024 < $MEMORY_TARGET_MB" \
    "$(mb "$first_pss_sum") MB, every page counted once"
exit $status
