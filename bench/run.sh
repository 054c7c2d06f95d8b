#!/usr/bin/env bash
# run.sh BUILD_DIR [SECTION...] - Myna's benchmarks, each printed beside a
# baseline measured in the same run on the same machine: absolute figures
# drift from machine to machine, ratios measured in one run much less.
# bench/README.md explains the figures and the targets.
#
# Sections (default: all, in this order):
#   webhook   bare libevent server vs `myna serve` under myna_loadgen
#   store     the store's insert path vs a wamid-keyed table
#   flush     a bot's batch timers vs plain libevent timers
#   turns     one bot between an instant fake LLM and fake Graph API vs the
#             same turns made without Myna (myna_turns)
#
# Only 127.0.0.1, every wait bounded, and the temp dir and every process
# started here are gone when it exits. Exit: 0 every section ran (targets may
# still MISS), 1 a section could not run or Myna lost or duplicated
# acknowledged webhooks, 2 usage.
#
# Environment knobs: BENCH_CONNECTIONS (64), BENCH_DURATION (10 s),
# BENCH_SIZE (1500 bytes), BENCH_ROUNDS (3: webhook's alternated bare/myna
# pairs); for turns BENCH_TURNS_BURST (6000),
# BENCH_TURNS_STEADY (4000), BENCH_TURNS_RATE (200 per second). Change them
# only to explore: the targets assume the defaults.

# shellcheck disable=SC2317  # functions are called indirectly ("bench_$s")
set -euo pipefail

readonly SECTIONS=(webhook store flush turns fleet)  # a later benchmark: add its name and a bench_<name>
readonly READY_TIMEOUT_S=10      # a server that is not listening by then is broken
readonly STOP_TIMEOUT_S=10       # Myna drains for up to 5 s on SIGTERM, then exits
readonly SECRET=bench-secret-0123456789
readonly TURNS_WINDOW_MS=100     # the turns section's batch window, taken off its latencies
readonly INSTANCE_JSON='[{"id":"bench","name":"Bench","provider":"cloud","phone_number_id":"481516234200915","waba_id":"302948571630214","access_token":"bench-token","app_secret":"bench-secret-0123456789","verify_token":"bench-verify"}]'

usage() {
    echo "usage: $0 BUILD_DIR [SECTION...]   (sections: ${SECTIONS[*]})" >&2
    exit 2
}

int_env() {   # int_env NAME DEFAULT MAX: a positive integer from the environment
    local v=${!1:-$2}
    if ! [[ $v =~ ^[0-9]+$ ]] || [ "$v" -lt 1 ] || [ "$v" -gt "$3" ]; then
        echo "run.sh: $1 must be an integer in 1..$3, not '$v'" >&2
        exit 2
    fi
    echo "$v"
}

[ $# -ge 1 ] || usage
[ -d "$1" ] || { echo "run.sh: no build directory '$1'" >&2; exit 2; }
build=$(cd "$1" && pwd)
shift
sections=("$@")
[ ${#sections[@]} -gt 0 ] || sections=("${SECTIONS[@]}")
for s in "${sections[@]}"; do
    [[ " ${SECTIONS[*]} " == *" $s "* ]] || usage
done

CONNECTIONS=$(int_env BENCH_CONNECTIONS 64 1000)
DURATION=$(int_env BENCH_DURATION 10 120)
SIZE=$(int_env BENCH_SIZE 1500 3145728)
ROUNDS=$(int_env BENCH_ROUNDS 3 20)
TURNS_BURST=$(int_env BENCH_TURNS_BURST 6000 100000)
TURNS_STEADY=$(int_env BENCH_TURNS_STEADY 4000 100000)
TURNS_RATE=$(int_env BENCH_TURNS_RATE 200 5000)
loadgen=$build/bench/myna_loadgen
bare=$build/bench/myna_bare_server
myna=$build/myna
for f in "$loadgen" "$bare"; do
    [ -x "$f" ] || { echo "run.sh: missing $f (build with -DMYNA_BENCH=ON)" >&2; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/myna-bench.XXXXXX")
live_pids=()   # servers started and not yet reaped: the exit trap kills them

cleanup() {
    local pid
    for pid in "${live_pids[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- helpers ----------------------------------------------------------------

forget_pid() {
    local keep=() p
    for p in "${live_pids[@]}"; do
        [ "$p" = "$1" ] || keep+=("$p")
    done
    live_pids=("${keep[@]+"${keep[@]}"}")
}

# start_server LOG CMD...: runs CMD in the background with stderr into LOG;
# its pid is left in $server_pid.
start_server() {
    local log=$1
    shift
    : >"$log"    # exists before wait_ready first reads it
    "$@" >"$log.out" 2>"$log" &
    server_pid=$!
    live_pids+=("$server_pid")
}

# wait_ready PID LOG: prints the public port from the `event=ready
# public=127.0.0.1:PORT` line, polling the log (never a fixed sleep) for at
# most READY_TIMEOUT_S. Returns 1 if the process exits or the time runs out.
wait_ready() {
    local pid=$1 log=$2 port deadline=$((SECONDS + READY_TIMEOUT_S))
    while :; do
        port=$(sed -nE 's/.*event=ready public=127\.0\.0\.1:([0-9]+).*/\1/p' "$log" | head -n 1)
        if [ -n "$port" ]; then
            echo "$port"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

# stop_server PID: SIGTERM, then up to STOP_TIMEOUT_S for it to exit, then
# SIGKILL. Leaves the exit status in $stop_status (137 when it had to be killed).
stop_server() {
    local pid=$1 deadline=$((SECONDS + STOP_TIMEOUT_S))
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "run.sh: pid $pid still running ${STOP_TIMEOUT_S}s after SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    stop_status=0
    wait "$pid" 2>/dev/null || stop_status=$?
    forget_pid "$pid"
}

# peak_rss_mb PID: VmHWM (peak resident set) in MiB, one decimal.
peak_rss_mb() {
    awk '/^VmHWM:/ { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"
}

# rss_mb PID: VmRSS (resident set now) in MiB, one decimal.
rss_mb() {
    awk '/^VmRSS:/ { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"
}

# cpu_ticks PID: user + system time of all its threads so far, in clock ticks.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# kv KEY LINE: the value of KEY=VALUE in a key=value line.
kv() {
    awk -v k="$1" '{ for (i = 1; i <= NF; i++) { n = index($i, "=");
        if (substr($i, 1, n - 1) == k) { print substr($i, n + 1); exit } } }' <<<"$2"
}

# awk does the arithmetic: bash has no floating point.
calc() { awk "BEGIN { printf \"%.2f\n\", ($1) }"; }
# median N...: the middle value (the mean of the two middle ones for an even count).
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
        END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
holds() { awk "BEGIN { exit !($1) }"; }

# target LABEL CONDITION VALUE: one PASS/MISS line.
target() {
    if holds "$2"; then echo "PASS $1 ($3)"; else echo "MISS $1 ($3)"; fi
}

# serve_and_load NAME DIR PATH CMD...: starts the server CMD, waits for its
# ready line, puts DURATION seconds of load on http://127.0.0.1:PORT/PATH,
# reads its peak RSS while it still runs, stops it. Sets load_line (the
# loadgen's result), load_detail (its stderr summary), load_rss, load_cpu
# (server CPU during the load, % of one core) and load_status (its exit
# status after SIGTERM). Returns 1 when it could not measure.
serve_and_load() {
    local name=$1 dir=$2 path=$3 port t0 t1 hz
    shift 3
    load_line="" load_detail="" load_rss="?" load_cpu="?" load_status=0
    start_server "$dir/$name.log" "$@"
    if ! port=$(wait_ready "$server_pid" "$dir/$name.log"); then
        echo "$name: no 'event=ready public=127.0.0.1:PORT' line within ${READY_TIMEOUT_S}s; last log lines:" >&2
        tail -n 20 "$dir/$name.log" >&2
        stop_server "$server_pid"
        return 1
    fi
    hz=$(getconf CLK_TCK)
    t0=$(cpu_ticks "$server_pid")
    # Bounded even if the loadgen wedges: duration + its drain + slack.
    load_line=$(timeout --foreground -k 5 $((DURATION + 30)) "$loadgen" \
        --url "http://127.0.0.1:$port/$path" --connections "$CONNECTIONS" \
        --duration "$DURATION" --size "$SIZE" --secret "$SECRET" 2>"$dir/$name-load.log") || true
    t1=$(cpu_ticks "$server_pid")
    load_rss=$(peak_rss_mb "$server_pid")   # before SIGTERM: /proc/PID must still exist
    load_cpu=$(awk -v t="$((t1 - t0))" -v hz="$hz" -v d="$DURATION" 'BEGIN { printf "%.0f", 100 * t / hz / d }')
    load_detail=$(grep '^loadgen:' "$dir/$name-load.log" | tail -n 1 || true)
    stop_server "$server_pid"
    load_status=$stop_status
    if [ -z "$load_line" ]; then
        echo "$name: the loadgen printed no result; its output:" >&2
        cat "$dir/$name-load.log" >&2
        return 1
    fi
}

# print_run NAME [ROUND]: the loadgen line and the CPU both sides used, from
# serve_and_load.
print_run() {
    local gen_cpu round=${2:+round=$2 }
    gen_cpu=$(kv cpu_pct "$load_detail")
    printf '%-5s %s%s\n' "$1" "$round" "$load_line"
    printf '%-5s %sserver_cpu_pct=%s loadgen_cpu_pct=%s\n' "$1" "$round" "$load_cpu" "${gen_cpu:-?}"
    if [ -n "$gen_cpu" ] && [ "$gen_cpu" -ge 90 ]; then
        echo "$1   NOTE: the loadgen used ${gen_cpu}% of a core: it may have set the pace, not the server"
    fi
    if [ "$(kv errors "$load_line")" != 0 ] || [ "$(kv non200 "$load_line")" != 0 ]; then
        echo "$1   $load_detail"
    fi
}

# ---- webhook: the HTTP ingress path -----------------------------------------

webhook_bare() {
    serve_and_load bare "$1" webhook/bench "$bare" 127.0.0.1:0 || return 1
    bare_line=$load_line bare_rss=$load_rss
    print_run bare "$2"
}

# The same server answering on the next loop turn: what holding a request
# for anything (a commit) costs evhttp by itself.
webhook_deferred() {
    serve_and_load defer "$1" webhook/bench "$bare" --defer 127.0.0.1:0 || return 1
    defer_line=$load_line
    print_run defer
}

# Plain evhttp (no net/http_server.h): for reference, what libevent alone
# does with the same load.
webhook_plain() {
    serve_and_load plain "$1" webhook/bench "$bare" --plain 127.0.0.1:0 || return 1
    plain_line=$load_line
    print_run plain
}

webhook_myna() {
    local dir=$1
    if [ ! -x "$myna" ]; then
        echo "myna: not run: $myna does not exist (build the myna target first)" >&2
        return 1
    fi
    mkdir -p "$dir/var"
    printf '%s\n' "$INSTANCE_JSON" >"$dir/instances.json"
    serve_and_load myna "$dir" webhook/bench "$myna" serve --public 127.0.0.1:0 \
        --admin 127.0.0.1:0 --data "$dir/var" --instances "$dir/instances.json" --bots 0 || return 1
    myna_line=$load_line myna_rss=$load_rss myna_status=$load_status
    print_run myna "$2"
}

# Every 200 is a promise that the webhook is stored: the inbox must hold one
# row per 200 answer. More rows are explained only by requests whose answer
# was lost after the commit (counted as loadgen errors). Returns 1 on a
# mismatch that no error explains.
webhook_inbox_check() {
    local dir=$1 db=$1/var/instances/bench.db ok errors rows
    ok=$(( $(kv requests "$myna_line") - $(kv non200 "$myna_line") ))
    errors=$(kv errors "$myna_line")
    if ! command -v sqlite3 >/dev/null 2>&1; then
        echo "inbox check: SKIP (sqlite3 not installed)"
        return 0
    fi
    if [ ! -f "$db" ]; then
        echo "inbox check: FAIL (no store at var/instances/bench.db)"
        return 1
    fi
    if ! rows=$(timeout 30 sqlite3 "$db" 'SELECT count(*) FROM inbox;' 2>&1); then
        echo "inbox check: FAIL (sqlite3: $rows)"
        return 1
    fi
    if [ "$rows" -eq "$ok" ]; then
        echo "inbox check: OK (rows=$rows = 200 answers)"
    elif [ "$rows" -gt "$ok" ] && [ $((rows - ok)) -le "$errors" ]; then
        echo "inbox check: OK (rows=$rows, 200 answers=$ok; the $((rows - ok)) extra are among the $errors failed requests)"
    else
        echo "inbox check: FAIL (rows=$rows, 200 answers=$ok, failed requests=$errors)"
        return 1
    fi
}

# ROUNDS pairs of runs, bare then Myna, each pair's ratio on its own: on a
# shared machine a neighbour's burst lands in one run, and the median of the
# pairs leaves it out where one pair would not.
bench_webhook() {
    local dir=$tmp/webhook rc=0 r ratio p99 rps clean=1 ratios=() p99s=() rpss=() rss_max=0
    mkdir -p "$dir"
    bare_line="" bare_rss="?" plain_line="" myna_line="" myna_rss="?" myna_status=0
    echo "== webhook: $CONNECTIONS connections, ${DURATION}s each, ${SIZE}-byte signed Cloud API bodies, 127.0.0.1, $ROUNDS rounds of bare then myna =="

    for ((r = 1; r <= ROUNDS; r++)); do
        webhook_bare "$dir" "$r" || return 1
        if ! webhook_myna "$dir/myna$r" "$r"; then
            echo "myna  not run (see above)"
            return 1
        fi
        if [ "$myna_status" -ne 0 ]; then
            echo "myna  exited with status $myna_status after SIGTERM (want 0); last log lines:"
            tail -n 5 "$dir/myna$r/myna.log"
            rc=1
        fi
        webhook_inbox_check "$dir/myna$r" || rc=1
        # A fast 503 is not throughput: the ratio counts only on clean runs.
        holds "$(kv errors "$myna_line") == 0 && $(kv non200 "$myna_line") == 0" || clean=0
        ratios+=("$(calc "$(kv rps "$bare_line") > 0 ? $(kv rps "$myna_line") / $(kv rps "$bare_line") : 0")")
        p99s+=("$(kv p99_ms "$myna_line")")
        rpss+=("$(kv rps "$myna_line")")
        if [ "$myna_rss" != "?" ] && holds "$myna_rss > $rss_max"; then
            rss_max=$myna_rss
        fi
    done
    webhook_deferred "$dir" || return 1
    webhook_plain "$dir" || return 1

    ratio=$(median "${ratios[@]}")
    p99=$(median "${p99s[@]}")
    rps=$(median "${rpss[@]}")
    echo "ratio myna_rps/bare_rps=$ratio (median of the rounds: ${ratios[*]})"
    echo "ratio myna_rps/defer_rps=$(calc "$(kv rps "$defer_line") > 0 ? $rps / $(kv rps "$defer_line") : 0") (defer: the bare server answering on the next loop turn; Myna's median req/s)"
    echo "ratio myna_rps/plain_rps=$(calc "$(kv rps "$plain_line") > 0 ? $rps / $(kv rps "$plain_line") : 0") (plain: the bare server on evhttp alone, for reference)"
    echo "defer p99_ms=$(kv p99_ms "$defer_line") (the least p99 of any server that answers after a commit)"
    echo "myna  p99_ms=$p99 (median of the rounds: ${p99s[*]})"
    echo "myna  peak_rss_mb=$rss_max (VmHWM of the serve process, the highest of the rounds; bare: $bare_rss)"

    target "ratio >= 0.5" "$ratio >= 0.5 && $clean" "$ratio, every round clean: $([ "$clean" = 1 ] && echo yes || echo no)"
    target "p99 < 5 ms" "$p99 < 5" "$p99 ms"
    if [ "$rss_max" = 0 ]; then
        echo "MISS rss < 20 MB (not measured)"
    else
        target "rss < 20 MB" "$rss_max < 20" "$rss_max MB"
    fi
    return "$rc"
}

# ---- store: SQLite insert path ------------------------------------------------

bench_store() {
    echo "== store: 30,000 inbound records of 1.5 KB, transactions of 64 =="
    mkdir -p "$tmp/store"
    timeout 300 "$build/bench/myna_store_insert" "$tmp/store" 30000
}

# ---- flush: batch timers of a bot ------------------------------------------------

# 1,000 contacts send one text each (a batch each), 200 a second, to a bot with a 200 ms
# window; each flush logs how late it came after its deadline. Baseline: plain
# libevent timers armed the same way on this machine.
bench_flush() {
    local dir=$tmp/flush port lines base p50 p99
    mkdir -p "$dir/var"
    echo "== flush: 1,000 batches, 200 ms window, lateness after the deadline =="
    base=$("$build/bench/myna_timer_baseline" 1000 200 3000)
    echo "timers $base"
    printf '%s\n' '[{"id":"bench","name":"Bench","provider":"cloud","phone_number_id":"481516234200915","access_token":"bench-token","app_secret":"'"$SECRET"'","verify_token":"bench-verify","graph_url":"http://127.0.0.1:9/v25.0","batch":{"window_ms":200,"max":10},"faq":[{"q":"test","a":"ok"}]}]' >"$dir/instances.json"
    start_server "$dir/myna.log" "$myna" serve --public 127.0.0.1:0 --admin 127.0.0.1:0 \
        --data "$dir/var" --instances "$dir/instances.json" --log-level debug --bots 1
    if ! port=$(wait_ready "$server_pid" "$dir/myna.log"); then
        echo "flush: myna did not start" >&2
        stop_server "$server_pid"
        return 1
    fi
    timeout 60 "$loadgen" --url "http://127.0.0.1:$port/webhook/bench" --connections 4 \
        --duration 30 --max-requests 1000 --unique-senders --rate 200 --size 400 --secret "$SECRET" \
        >"$dir/load.out" 2>&1 || true
    for _ in $(seq 1 150); do   # at most 15 s for the last flushes
        lines=$(cat "$dir/myna.log" "$dir/var/logs/bench.log" 2>/dev/null | grep -c 'event=batch_flushed' || true)
        [ "${lines:-0}" -ge 1000 ] && break
        sleep 0.1
    done
    stop_server "$server_pid"
    # the bot logs to the master's stderr or to its own file in the data directory
    cat "$dir/myna.log" "$dir/var/logs/bench.log" 2>/dev/null | grep -o 'late_ms=-\?[0-9]*' |
        cut -d= -f2 | sort -n >"$dir/late"
    lines=$(wc -l <"$dir/late")
    if [ "$lines" -lt 1 ]; then
        echo "flush: no batch_flushed lines; last log lines:" >&2
        tail -n 10 "$dir/myna.log" >&2
        return 1
    fi
    p50=$(awk -v n="$lines" 'NR == int(n * 0.50) + 1 { print; exit }' "$dir/late")
    p99=$(awk -v n="$lines" 'NR == int(n * 0.99) + 1 { print; exit }' "$dir/late")
    echo "myna  batches=$lines p50_ms=$p50 p99_ms=$p99 max_ms=$(tail -n 1 "$dir/late")"
    echo "myna  p99 minus the timers' p99: $(calc "$p99 - $(kv p99_ms "$base")") ms"
    target "flush p99 < 20 ms" "$p99 < 20" "$p99 ms"
}

# ---- turns: the conversation pipeline of one bot ---------------------------------

# bot_of PID LOG...: "BOTPID BOTLOG": the `myna bot` child of the master PID
# and the log it writes to (the master's, or its own file in the data
# directory: the first of the LOGs with its event=bot_ready line), waiting up
# to READY_TIMEOUT_S for that line.
bot_of() {
    local master=$1 deadline=$((SECONDS + READY_TIMEOUT_S)) p log
    shift
    while [ "$SECONDS" -lt "$deadline" ] && kill -0 "$master" 2>/dev/null; do
        for log in "$@"; do
            grep -qs 'event=bot_ready' "$log" || continue
            # shellcheck disable=SC2013  # space-separated pids: words on purpose
            for p in $(cat /proc/"$master"/task/*/children 2>/dev/null); do
                if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q ' bot --instance '; then
                    echo "$p $log"
                    return 0
                fi
            done
        done
        sleep 0.05
    done
    return 1
}

# turns_run NAME ARGS...: one myna_turns run against the bot (bounded by its
# --timeout plus slack); its line goes to $turns_line, CPU the bot used to
# $turns_cpu_ms_per_turn.
turns_run() {
    local name=$1 t0 t1 n
    shift
    t0=$(cpu_ticks "$bot_pid")
    turns_line=$(timeout --foreground -k 5 130 "$turns_bin" --mode myna \
        --url "http://127.0.0.1:$port/webhook/bench" --secret "$SECRET" \
        --graph "http://127.0.0.1:$gport" --llm "http://127.0.0.1:$lport" \
        --window-ms "$TURNS_WINDOW_MS" --log "$bot_log" --timeout 120 \
        "$@" 2>"$dir/$name.err") || true
    t1=$(cpu_ticks "$bot_pid")
    n=$(kv sent "$turns_line")
    turns_cpu_ms_per_turn=$(awk -v t="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" -v n="${n:-0}" \
        'BEGIN { if (n > 0) printf "%.2f", 1000 * t / hz / n; else print "?" }')
    if [ -z "$turns_line" ]; then
        echo "$name: myna_turns printed no result:" >&2
        cat "$dir/$name.err" >&2
        return 1
    fi
    printf '%-6s %s\n' "$name" "$turns_line"
    printf '%-6s bot_cpu_ms_per_turn=%s\n' "$name" "$turns_cpu_ms_per_turn"
    if [ "$(kv missing "$turns_line")" != 0 ] || [ "$(kv non200 "$turns_line")" != 0 ] ||
        [ "$(kv errors "$turns_line")" != 0 ]; then
        cat "$dir/$name.err"
        return 1
    fi
}

# One bot (`myna serve --bots 1`) between myna_fake_llm and myna_fake_graph,
# both answering at once; a 100 ms batch window. Baseline in the same run:
# myna_turns --mode direct, the same turns' requests made straight to the
# fakes. burst: many new chats at once (the drain rate); steady: new chats
# at TURNS_RATE (the latency); then the bot's RSS, holding every chat.
bench_turns() {
    local dir=$tmp/turns llm=$build/tests/myna_fake_llm graph=$build/tests/myna_fake_graph
    local lport gport port bot_pid direct myna_pid llm_pid graph_pid rss0 rss hwm burst steady
    local rc=0 contacts bot_log
    local sent answered answered_n base p99 turns_bin=$build/bench/myna_turns
    mkdir -p "$dir/var"
    contacts=$((TURNS_BURST + TURNS_STEADY))
    echo "== turns: one bot, instant fake LLM and fake Graph API, ${TURNS_WINDOW_MS} ms window, $contacts new chats, 127.0.0.1 =="
    for f in "$llm" "$graph" "$turns_bin" "$myna"; do
        [ -x "$f" ] || { echo "turns: missing $f (build with -DMYNA_BENCH=ON)" >&2; return 1; }
    done
    start_server "$dir/llm.log" "$llm" --listen 127.0.0.1:0
    llm_pid=$server_pid
    lport=$(wait_ready "$llm_pid" "$dir/llm.log") || { echo "turns: the fake LLM did not start" >&2; return 1; }
    start_server "$dir/graph.log" "$graph" --listen 127.0.0.1:0 --token bench-token
    graph_pid=$server_pid
    gport=$(wait_ready "$graph_pid" "$dir/graph.log") || { echo "turns: the fake Graph did not start" >&2; return 1; }

    direct=$(timeout --foreground -k 5 70 "$turns_bin" --mode direct --llm "http://127.0.0.1:$lport" \
        --graph "http://127.0.0.1:$gport" --turns 5000 --connections 32 --timeout 60 \
        2>"$dir/direct.err") || true
    if [ -z "$direct" ]; then
        echo "turns: the direct run printed no result:" >&2
        cat "$dir/direct.err" >&2
        return 1
    fi
    printf '%-6s %s\n' direct "$direct"

    printf '%s\n' '[{"id":"bench","name":"Bench","provider":"cloud","phone_number_id":"481516234200915","access_token":"bench-token","app_secret":"'"$SECRET"'","verify_token":"bench-verify","graph_url":"http://127.0.0.1:'"$gport"'/v25.0","llm":{"url":"http://127.0.0.1:'"$lport"'/v1","model":"fake-model"},"batch":{"window_ms":'"$TURNS_WINDOW_MS"',"max":10},"pacing":{"messages_per_second":1000}}]' >"$dir/instances.json"
    start_server "$dir/myna.log" "$myna" serve --public 127.0.0.1:0 --admin 127.0.0.1:0 \
        --data "$dir/var" --instances "$dir/instances.json" --bots 1
    myna_pid=$server_pid
    if ! port=$(wait_ready "$myna_pid" "$dir/myna.log") ||
        ! bot_pid=$(bot_of "$myna_pid" "$dir/myna.log" "$dir/var/logs/bench.log"); then
        echo "turns: myna or its bot did not start; last log lines:" >&2
        tail -n 10 "$dir/myna.log" >&2
        return 1
    fi
    bot_log=${bot_pid#* }
    bot_pid=${bot_pid%% *}
    rss0=$(rss_mb "$bot_pid")

    turns_run burst --turns "$TURNS_BURST" --first-sender 0 || rc=1
    burst=$turns_line
    turns_run steady --turns "$TURNS_STEADY" --first-sender "$TURNS_BURST" --rate "$TURNS_RATE" || rc=1
    steady=$turns_line
    rss=$(rss_mb "$bot_pid")
    hwm=$(peak_rss_mb "$bot_pid")
    stop_server "$myna_pid"
    stop_server "$llm_pid"
    stop_server "$graph_pid"
    echo "myna   bot_rss_mb=$rss (VmRSS of \`myna bot\` holding $contacts chats; at its start: $rss0; peak: $hwm)"
    [ -n "$burst" ] && [ -n "$steady" ] || return 1

    sent=$(kv sent_per_s "$burst")
    answered=$(kv answered_per_s "$burst")   # "?" when the bot's log had no turn_answered lines
    answered_n=${answered//\?/0}
    base=$(kv turns_per_s "$direct")
    p99=$(kv p99_ms "$steady")
    echo "ratio  myna_answered_per_s/direct_turns_per_s=$(calc "$base > 0 ? $answered_n / $base : 0")" \
        "myna_sent_per_s/direct_turns_per_s=$(calc "$base > 0 ? $sent / $base : 0")"
    # a turn is through the bot once its reply is in the outbox; the sends
    # that follow are paced (pacing.messages_per_second, at most 1000)
    target "turns/s >= 2000" "$answered_n >= 2000" \
        "answered ${answered}/s; sent ${sent}/s, paced at 1000/s at most"
    target "p99 < 20 ms" "$p99 < 20" "$p99 ms at $TURNS_RATE turns/s, window taken off"
    if [ "$rss" = "?" ]; then
        echo "MISS rss < 30 MB (not measured)"
    else
        target "rss < 30 MB" "$rss < 30" "$rss MB with $contacts chats"
    fi
    return "$rc"
}

# ---- fleet: 200 instances started by one master (bench/fleet.sh) -----------

bench_fleet() {
    bash "$(dirname "$0")/fleet.sh" "$build"
}

# ---- main ---------------------------------------------------------------------

# Figures from a busy machine are low and noisy: say so before they are read.
load1=$(cut -d ' ' -f 1 /proc/loadavg)
echo "machine: $(nproc) cores, load average $load1 before the run"
echo "binary: $("$myna" version 2>/dev/null || echo "$myna: not built")"
if holds "$load1 >= 0.5"; then
    echo "NOTE: other work is using the CPU; rerun on a quiet machine before trusting the figures"
fi
echo

status=0
for s in "${sections[@]}"; do
    "bench_$s" || status=1
    echo
done
exit $status
