#!/usr/bin/env bash
# Proxy overhead, side by side in one run. The load generator (wrk), the mock
# model (examples/mock_upstream.rs) and each proxy are separate processes.
# The same mock is reached directly, through a bare hyper pass-through
# (examples/passthrough.rs: the cost of a second HTTP hop alone), through
# `palisade serve` with an empty policy, through it with
# policies/default.yaml and (--litellm) through LiteLLM's proxy; non-streamed
# and streamed answers, each connection count, each prompt size. Prints one
# Markdown table: requests/s, p50, p99, errors, and each row against the
# direct row and the pass-through row of its scenario.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/load.sh [--duration SECS] [--warmup SECS] [--connections "1 32"]
                       [--sizes "1 16"] [--chunks N] [--rounds N] [--wrk-threads N]
                       [--conversation] [--varied] [--litellm] [--no-build] [--keep DIR]
                       [--compare BINARY] [--no-default-policy]
       scripts/load.sh --in-process [REQUESTS]   (the older in-process generator)

  --duration SECS     measured time per row (default 10)
  --warmup SECS       unmeasured load before each row (default 2)
  --connections LIST  wrk connections per scenario (default "1 32")
  --sizes LIST        user prompt sizes in KB (default "1 16")
  --chunks N          content chunks per streamed answer (default 16)
  --rounds N          repeat the whole set N times; the table shows medians
                      and the req/s range (default 1)
  --wrk-threads N     wrk threads (default 1; never more than the connections)
  --conversation      each request is a chat with a 4 KB system prompt and
                      four earlier turns (what chat clients resend on every
                      call) before the new user message of each size; adds
                      a row for the default policy with its detection cache
                      off (detection_cache_mb: 0)
  --varied            each request's prompt is the next of about 4 MB of
                      different texts (words of the project's README and
                      docs in random order, seed 7; those the default
                      policy blocks are left out) instead of the same prose
                      with a new number: detection on text it has not seen,
                      as on real traffic (rows after the first of a size
                      see the texts again, warmer)
  --litellm           also measure LiteLLM's proxy in front of the same mock
                      (installs litellm[proxy] into target/litellm-venv)
  --no-build          use the release binaries already built (in
                      $CARGO_TARGET_DIR/release, else target/release)
  --compare BINARY    also measure another palisade binary (e.g. a build of
                      an older commit, or a script that sets an environment
                      variable and execs this build) with the empty policy
                      and, unless --no-default-policy, the default policy,
                      beside this one
  --no-default-policy leave out the default-policy rows
  --keep DIR          keep configs, logs and raw wrk output in DIR
Needs wrk (Debian/Ubuntu: apt-get install wrk), curl, jq and python3.
EOF
}

cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=10
WARMUP=2
CONNECTIONS="1 32"
SIZES="1 16"
CHUNKS=16
WRK_THREADS=1
ROUNDS=1
LITELLM=0
CONVERSATION=0
VARIED=0
BUILD=1
KEEP=""
COMPARE=""
DEFAULT_POLICY=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    --chunks) CHUNKS=$2; shift 2 ;;
    --wrk-threads) WRK_THREADS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --litellm) LITELLM=1; shift ;;
    --conversation) CONVERSATION=1; shift ;;
    --varied) VARIED=1; shift ;;
    --no-build) BUILD=0; shift ;;
    --keep) KEEP=$2; shift 2 ;;
    --compare) COMPARE=$(realpath "$2"); shift 2 ;;
    --no-default-policy) DEFAULT_POLICY=0; shift ;;
    --in-process) shift; exec cargo run --quiet --release --example load -- "$@" ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

for tool in wrk curl jq python3; do
  if ! command -v "$tool" >/dev/null; then
    echo "load.sh: $tool is required (wrk: apt-get install wrk)" >&2
    exit 1
  fi
done

if [[ $BUILD == 1 ]]; then
  cargo build --quiet --release --bin palisade --example mock_upstream --example passthrough
fi
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
PALISADE=$TARGET_DIR/release/palisade
MOCK=$TARGET_DIR/release/examples/mock_upstream
PASSTHROUGH=$TARGET_DIR/release/examples/passthrough

if [[ -n $KEEP ]]; then
  mkdir -p "$KEEP"
  WORK=$(cd "$KEEP" && pwd)
else
  WORK=$(mktemp -d)
fi

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ -z $KEEP ]]; then
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until GET $1 answers 2xx (up to $2 seconds) while the last
# process started is alive; on failure shows the end of its log ($3).
wait_ready() {
  local url=$1 secs=$2 log=$3 i pid=${PIDS[-1]}
  for ((i = 0; i < secs * 10; i++)); do
    if curl -fsS -o /dev/null -H "authorization: Bearer $API_KEY" "$url" 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      break
    fi
    sleep 0.1
  done
  echo "load.sh: $url did not answer within ${secs}s; end of $log:" >&2
  tail -20 "$log" >&2
  return 1
}

# Every request carries this bearer key: LiteLLM's proxy refuses to start
# without a master key; Palisade (no keys configured) and the mock ignore it.
API_KEY=sk-load-$(python3 -c 'import secrets; print(secrets.token_hex(24))')
export WRK_AUTH="Bearer $API_KEY"

# --- the mock model -------------------------------------------------------
MOCK_PORT=$(free_port)
"$MOCK" --port "$MOCK_PORT" --chunks "$CHUNKS" >"$WORK/mock.log" 2>&1 &
PIDS+=($!)
MOCK_URL=http://127.0.0.1:$MOCK_PORT/v1
wait_ready "http://127.0.0.1:$MOCK_PORT/healthz" 30 "$WORK/mock.log"

# --- the bare pass-through ------------------------------------------------
PASS_PORT=$(free_port)
"$PASSTHROUGH" --port "$PASS_PORT" --upstream "http://127.0.0.1:$MOCK_PORT" >"$WORK/passthrough.log" 2>&1 &
PIDS+=($!)
wait_ready "http://127.0.0.1:$PASS_PORT/healthz" 30 "$WORK/passthrough.log"

# --- Palisade, empty and default policy ------------------------------------
printf 'version: 1\nname: empty\nrules: []\n' >"$WORK/empty.yaml"

# Starts `palisade serve` (binary $3, default this build's) with policy
# file $2 and extra configuration lines $4; sets PORT_OF_$1.
start_palisade() {
  local name=$1 policy=$2 binary=${3:-$PALISADE} extra=${4:-} port
  port=$(free_port)
  cat >"$WORK/palisade-$name.yaml" <<EOF
listen: 127.0.0.1:$port
policies: [$policy]
upstreams:
  - name: mock
    base_url: $MOCK_URL
    default: true
audit:
  sink: off
$extra
EOF
  env -u PALISADE_UPSTREAM_URL -u PALISADE_UPSTREAM_API_KEY -u PALISADE_LISTEN RUST_LOG=warn \
    "$binary" serve --config "$WORK/palisade-$name.yaml" >"$WORK/palisade-$name.log" 2>&1 &
  PIDS+=($!)
  wait_ready "http://127.0.0.1:$port/readyz" 60 "$WORK/palisade-$name.log"
  printf -v "PORT_OF_$name" '%s' "$port"
}
TARGETS=(direct "bare pass-through")
URLS=("$MOCK_URL" "http://127.0.0.1:$PASS_PORT/v1")
if [[ -n $COMPARE ]]; then
  start_palisade compare "$WORK/empty.yaml" "$COMPARE"
  TARGETS+=("palisade $(basename "$COMPARE"), empty policy")
  URLS+=("http://127.0.0.1:$PORT_OF_compare/v1")
  if [[ $DEFAULT_POLICY == 1 ]]; then
    start_palisade comparedefault "$ROOT/policies/default.yaml" "$COMPARE"
    TARGETS+=("palisade $(basename "$COMPARE"), default policy")
    URLS+=("http://127.0.0.1:$PORT_OF_comparedefault/v1")
  fi
fi
start_palisade empty "$WORK/empty.yaml"
TARGETS+=("palisade, empty policy")
URLS+=("http://127.0.0.1:$PORT_OF_empty/v1")
if [[ $DEFAULT_POLICY == 1 ]]; then
  start_palisade default "$ROOT/policies/default.yaml"
  TARGETS+=("palisade, default policy")
  URLS+=("http://127.0.0.1:$PORT_OF_default/v1")
  if [[ $CONVERSATION == 1 ]]; then
    start_palisade nocache "$ROOT/policies/default.yaml" "$PALISADE" "detection_cache_mb: 0"
    TARGETS+=("palisade, default policy, cache off")
    URLS+=("http://127.0.0.1:$PORT_OF_nocache/v1")
  fi
fi

# --- LiteLLM (optional) ----------------------------------------------------
if [[ $LITELLM == 1 ]]; then
  VENV=$ROOT/target/litellm-venv
  if [[ ! -x $VENV/bin/litellm ]]; then
    echo "installing litellm[proxy] into $VENV ..." >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet 'litellm[proxy]'
  fi
  LITELLM_PORT=$(free_port)
  cat >"$WORK/litellm.yaml" <<EOF
model_list:
  - model_name: mock
    litellm_params:
      model: openai/mock
      api_base: $MOCK_URL
      api_key: unused
litellm_settings:
  telemetry: false
general_settings:
  master_key: $API_KEY
EOF
  LITELLM_TELEMETRY=False LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_LOG=ERROR \
    "$VENV/bin/litellm" --config "$WORK/litellm.yaml" \
    --host 127.0.0.1 --port "$LITELLM_PORT" --num_workers 1 >"$WORK/litellm.log" 2>&1 &
  PIDS+=($!)
  wait_ready "http://127.0.0.1:$LITELLM_PORT/health/liveliness" 180 "$WORK/litellm.log"
  TARGETS+=("litellm proxy")
  URLS+=("http://127.0.0.1:$LITELLM_PORT/v1")
fi

# --- request bodies ----------------------------------------------------------
# Benign prose (travel planning), cut to the size; allowed by the default policy.
PROSE="I am planning a relaxed week in Lisbon next spring with my partner. We like museums, \
long walks along the river, small restaurants that serve grilled fish, and a day trip to the \
palaces of Sintra. Could you suggest an order for the neighbourhoods, how to use the trams and \
trains, and a rough daily budget in euros for food, tickets and transport? We would also like \
a quiet evening with fado music and a morning at a market. "
body_file() { # size_kb stream -> path
  local kb=$1 stream=$2 file="$WORK/body-$1k-$2.json"
  if [[ ! -f $file ]]; then
    python3 - "$kb" "$stream" "$PROSE" "$CONVERSATION" "$VARIED" >"$file" <<'EOF'
import json, sys
kb, stream, prose = int(sys.argv[1]), sys.argv[2] == "stream", sys.argv[3]
conversation = sys.argv[4] == "1"
# "{{N}}" becomes a new number in every request (scripts/load.lua), so each
# prompt is a text Palisade has not seen: its detection cache, which skips
# texts already checked, is not what is measured. With --varied, "{{PROMPT}}"
# becomes one of the texts of prompts_file (below), another one per request.
if sys.argv[5] == "1":
    prompt = "Request {{N}}. {{PROMPT}}"
else:
    prompt = ("Request {{N}}. " + prose * (kb * 1024 // len(prose) + 1))[: kb * 1024]
messages = [{"role": "system", "content": "You are a concise travel assistant."}]
if conversation:
    # A system prompt of 4 KB and four earlier turns of about 1 KB: the
    # same in every request, as a chat client resends them.
    rules = "Answer travel questions for our agency's customers. Be concise and friendly, " \
        "quote prices in euros, prefer public transport and mention accessibility. "
    messages = [{"role": "system", "content": (rules * 40)[:4096]}]
    for turn in range(2):
        messages.append({"role": "user", "content": "Earlier question %d: " % turn + prose[:1000]})
        messages.append({"role": "assistant", "content": "Earlier answer %d: " % turn + prose[:1000]})
messages.append({"role": "user", "content": prompt})
print(json.dumps({"model": "mock", "stream": stream, "messages": messages}))
EOF
  fi
  echo "$file"
}

# With --varied: about 4 MB of texts of size_kb KB each (4,096 of 1 KB, 256
# of 16 KB; at least 200), one per line, made of
# the words of the project's README and docs in random order (seed 7), so
# each request brings text the detectors have not seen (their lazy DFAs
# build new states on it, as on real traffic); only letters and spaces, so
# a line goes into the JSON body as it is. Texts the default policy blocks
# are left out (the docs quote attacks), so every measured request is allowed.
prompts_file() { # size_kb -> path
  local kb=$1 file="$WORK/prompts-$1k.txt"
  if [[ ! -f $file ]]; then
    python3 - "$kb" "$ROOT" >"$WORK/prompts-$kb.jsonl" <<'EOF'
import glob, json, random, re, sys
kb, root = int(sys.argv[1]), sys.argv[2]
words = []
for path in sorted([root + "/README.md"] + glob.glob(root + "/docs/*.md")):
    words += re.findall(r"[A-Za-z]{2,15}", open(path, encoding="utf-8").read())
rng = random.Random(7)
for _ in range(max(200, 4096 // kb)):
    out, size = [], 0
    while size < kb * 1024:
        sentence = rng.sample(words, rng.randint(6, 18))
        sentence[0] = sentence[0].capitalize()
        text = " ".join(sentence) + rng.choice([".", ".", ".", "?", ","])
        out.append(text)
        size += len(text) + 1
    print(json.dumps({"text": " ".join(out)[: kb * 1024], "label": "benign"}))
EOF
    "$PALISADE" eval --policy "$ROOT/policies/default.yaml" --mistakes --json \
      "$WORK/prompts-$kb.jsonl" >"$WORK/prompts-$kb.eval.json"
    python3 - "$WORK/prompts-$kb.jsonl" "$WORK/prompts-$kb.eval.json" >"$file" <<'EOF'
import json, sys
report = json.load(open(sys.argv[2]))
blocked = {int(m["origin"].rsplit(":", 1)[1]) for m in report.get("mistakes", [])}
for number, line in enumerate(open(sys.argv[1]), 1):
    if number not in blocked:
        print(json.loads(line)["text"])
EOF
    echo "load.sh: --varied, $kb KB: $(wc -l <"$file") of $(wc -l <"$WORK/prompts-$kb.jsonl") texts allowed by the default policy" >&2
  fi
  echo "$file"
}

# --- checks before measuring ---------------------------------------------------
# The answer text a client reassembles from one request, or a failure.
answer_of() { # url body_file stream -> prints the text
  local url=$1 body=$2 stream=$3 headers=$WORK/check.headers out=$WORK/check.body status
  status=$(curl -sS -o "$out" -D "$headers" -w '%{http_code}' \
    -H 'content-type: application/json' -H "authorization: Bearer $API_KEY" --data-binary "@$body" "$url/chat/completions")
  if [[ $status != 200 ]]; then
    echo "load.sh: $url answered $status: $(head -c 300 "$out")" >&2
    return 1
  fi
  if grep -qi '^x-palisade-decision:' "$headers" && ! grep -qi '^x-palisade-decision: allow' "$headers"; then
    echo "load.sh: $url did not allow the request: $(grep -i '^x-palisade' "$headers" | tr -d '\r')" >&2
    return 1
  fi
  if [[ $stream == stream ]]; then
    grep -q '^data: \[DONE\]' "$out" || { echo "load.sh: $url: stream without [DONE]" >&2; return 1; }
    sed -n 's/^data: //p' "$out" | grep -v '^\[DONE\]' | jq -j '.choices[0].delta.content // empty'
  else
    jq -j '.choices[0].message.content' "$out"
  fi
}

for stream in plain stream; do
  for kb in $SIZES; do
    body=$(body_file "$kb" "$stream")
    expected=$(answer_of "${URLS[0]}" "$body" "$stream")
    for i in "${!URLS[@]}"; do
      got=$(answer_of "${URLS[$i]}" "$body" "$stream")
      if [[ $got != "$expected" ]]; then
        echo "load.sh: ${TARGETS[$i]} ($stream, $kb KB) answered '$got', direct '$expected'" >&2
        exit 1
      fi
    done
  done
done

# --- measuring -----------------------------------------------------------------
# Rounds run every scenario and target in the same order, so each target sees
# the same noise; the table shows each row's median over the rounds.
RESULTS=$WORK/results.tsv
: >"$RESULTS"
describe_machine() {
  echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
}
echo "start: $(describe_machine)" >&2
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for ((round = 1; round <= ROUNDS; round++)); do
  for stream in plain stream; do
    for conns in $CONNECTIONS; do
      threads=$((WRK_THREADS < conns ? WRK_THREADS : conns))
      for kb in $SIZES; do
        body=$(body_file "$kb" "$stream")
        prompts=""
        if [[ $VARIED == 1 ]]; then prompts=$(prompts_file "$kb"); fi
        if [[ $stream == stream ]]; then kind="stream($CHUNKS)"; else kind=non-stream; fi
        scenario="$kind c=$conns, $kb KB"
        for i in "${!URLS[@]}"; do
          url=${URLS[$i]}/chat/completions
          WRK_BODY=$body WRK_PROMPTS=$prompts wrk -t "$threads" -c "$conns" -d "${WARMUP}s" --timeout 10s \
            -s scripts/load.lua "$url" >/dev/null
          raw=$(WRK_BODY=$body WRK_PROMPTS=$prompts wrk -t "$threads" -c "$conns" -d "${DURATION}s" --timeout 10s \
            -s scripts/load.lua "$url" | grep '^{' | tail -1)
          echo "$raw" >>"$WORK/wrk.jsonl"
          jq -r --arg r "$round" --arg s "$scenario" --arg t "${TARGETS[$i]}" \
            '[$r, $s, $t, (.requests / (.duration_us / 1e6)), (.p50_us / 1000), (.p99_us / 1000),
              (.connect + .read + .write + .status + .timeout)] | @tsv' <<<"$raw" >>"$RESULTS"
          tail -1 "$RESULTS" >&2
        done
      done
    done
  done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
echo "end: $(describe_machine)" >&2

# --- the table -----------------------------------------------------------------
echo
echo "wrk (separate process), ${DURATION}s per row after ${WARMUP}s warm-up, $ROUNDS round(s);"
echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load average $LOAD_BEFORE before, $LOAD_AFTER after"
echo
python3 - "$RESULTS" "$ROUNDS" <<'EOF'
import statistics, sys
rows, order = {}, []
for line in open(sys.argv[1]):
    _, scenario, target, rps, p50, p99, errors = line.rstrip("\n").split("\t")
    key = (scenario, target)
    if key not in rows:
        rows[key] = []
        order.append(key)
    rows[key].append((float(rps), float(p50), float(p99), int(errors)))
several = int(sys.argv[2]) > 1
head = ("| scenario | target | req/s | p50 ms | p99 ms | errors | req/s vs direct | added p50 ms | added p99 ms"
        " | req/s vs pass-through | p50 ms over pass-through |")
if several:
    head += " req/s min–max |"
print(head)
print("|---|---|" + "---:|" * (head.count("|") - 3))
last = None
for scenario, target in order:
    runs = rows[(scenario, target)]
    rps, p50, p99 = (statistics.median(r[i] for r in runs) for i in range(3))
    errors = sum(r[3] for r in runs)
    if target == "direct":
        base = (rps, p50, p99)
        ratio = "100% |  |  |  | "
    else:
        ratio = f"{100 * rps / base[0]:.1f}% | {p50 - base[1]:+.3f} | {p99 - base[2]:+.3f}"
        if target == "bare pass-through":
            hop = (rps, p50)
            ratio += " | 100% | "
        else:
            ratio += f" | {100 * rps / hop[0]:.1f}% | {p50 - hop[1]:+.3f}"
    name = scenario if scenario != last else ""
    last = scenario
    line = f"| {name} | {target} | {rps:.0f} | {p50:.3f} | {p99:.3f} | {errors} | {ratio} |"
    if several:
        line += f" {min(r[0] for r in runs):.0f}–{max(r[0] for r in runs):.0f} |"
    print(line)
EOF
