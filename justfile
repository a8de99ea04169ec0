# SecurePACS: the one entry point. `just --list` shows every recipe.

set shell := ["bash", "-euo", "pipefail", "-c"]

python := env_var_or_default("PYTHON", "python3")
venv := ".venv"
py := venv / "bin/python"

# Build what is needed and serve SecurePACS on http://127.0.0.1:8000.
run: setup web
    SECUREPACS_HOST=127.0.0.1 SECUREPACS_PORT=8000 {{venv}}/bin/securepacs serve

# Everything CI runs: lint, types, the whole suite (CPython, Pyodide in Node, Chromium), and
# 100% branch coverage of securepacs.crypto.
test: setup web check
    {{py}} -m pytest --cov --cov-report=term-missing:skip-covered --durations=15

# Create .venv from the hash-pinned lock and install the project in editable mode.
setup:
    #!/usr/bin/env bash
    set -euo pipefail
    stamp="{{venv}}/.lock-$(sha256sum requirements.lock pyproject.toml | sha256sum | cut -c1-16)"
    if [ ! -f "$stamp" ]; then
        [ -x "{{py}}" ] || {{python}} -m venv {{venv}}
        {{py}} -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
        {{py}} -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
        rm -f {{venv}}/.lock-* && touch "$stamp"
    fi
    # mypy cannot follow setuptools' editable finder; give it a tree with the import names.
    mkdir -p .build/typecheck/securepacs
    ln -sfn ../../../crypto .build/typecheck/securepacs/crypto
    ln -sfn ../../../server .build/typecheck/securepacs/server
    ln -sfn ../../../client .build/typecheck/securepacs/client

# Assemble the offline Pyodide runtime (pinned by SHA-256) into wasm/dist.
wasm: setup
    {{py}} wasm/build.py

# Build the web app (client/web, TypeScript and Vite) against the runtime in wasm/dist. Skipped
# when neither the sources, the npm lock nor the runtime changed since the last build.
web: wasm
    #!/usr/bin/env bash
    set -euo pipefail
    cd client/web
    lock="$(sha256sum package-lock.json | cut -c1-16)"
    if [ ! -f "node_modules/.securepacs-$lock" ]; then
        npm ci --no-audit --no-fund --loglevel=error
        touch "node_modules/.securepacs-$lock"
    fi
    inputs="$(cat package-lock.json ./*.html tsconfig.json vite.config.mjs ../../wasm/dist/manifest.json $(find src public -type f | sort) | sha256sum | cut -c1-16)"
    if [ ! -f "dist/.securepacs-$inputs" ]; then
        npx tsc --noEmit
        npx vite build --logLevel warn
        touch "dist/.securepacs-$inputs"
    fi

# Lint, format check and strict type check.
check: setup
    {{venv}}/bin/ruff check .
    {{venv}}/bin/ruff format --check .
    {{venv}}/bin/mypy

# CPython tests only (no Node, no browser).
test-crypto: setup
    {{py}} -m pytest tests/crypto

# The vector and Wycheproof suites in Pyodide under Node 20 and in headless Chromium.
test-pyodide: setup wasm
    {{py}} -m pytest tests/pyodide

# Rebuild tests/vectors/ from fixed seeds (the suite checks that this changes nothing).
vectors: setup
    {{py}} tests/vectors/generate.py

# Crypto throughput and Argon2id timings (CPython vs Pyodide-in-Node), then sign-in latency
# under concurrency on SQLite and PostgreSQL, as tables.
bench: setup wasm
    {{py}} bench/crypto.py
    {{py}} bench/accounts.py

# The web app in Chromium: worker start, in-browser crypto vs native, encrypted vs plain upload
# from the page, and the main thread's longest task (bench/README.md).
bench-browser: web
    {{py}} bench/browser.py

# The viewer and download windows in Chromium on a 300-slice CT, encrypted vs the same viewer on
# plain files, beside Orthanc's WADO-RS and zip archive (bench/README.md).
bench-viewer: web
    {{py}} bench/viewer.py

# Format the code in place.
fmt: setup
    {{venv}}/bin/ruff format .
    {{venv}}/bin/ruff check --fix .
