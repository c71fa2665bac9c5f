#!/usr/bin/env bash
# Browser test of the built book (run through `make browser-test`; see README.md).
#
# 1. fetches MathJax 3, the ipywidgets embed manager and RequireJS from the npm registry into
#    _build/browser-test/ (never committed, never under _static/);
# 2. builds a test copy of the site into _build/browser-test/_build/html whose `mathjax_path` and
#    `nb_ipywidgets_js` point at those local copies (through `html_static_path`), so the test needs
#    no CDN; the public site keeps loading them from the CDNs;
# 3. serves that copy on 127.0.0.1 with `python -m http.server` for a bounded time;
# 4. opens every page in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core)
#    with check_site.mjs, which blocks every request that leaves 127.0.0.1 and writes a full-page
#    screenshot of each page to _build/screenshots/.
# Exits non-zero when anything fails. Needs node >= 20 and npm; the network is needed only for
# the npm registry (playwright-core and the three packages above).
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=${VENV:-.venv}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
HERE=tools/browser_test
WORK=_build/browser-test          # npm packs, generated config, test build, logs
STATIC=$WORK/static               # becomes the test build's html_static_path
SHOTS=_build/screenshots
# The versions the public site loads (myst-nb's defaults are require.js 2.3.4 and
# html-manager 1.0.6; Sphinx loads mathjax@3, whose newest release is 3.2.2).
VENDOR_PKGS="mathjax@3.2.2 @jupyter-widgets/html-manager@1.0.6 requirejs@2.3.4"

fail() { echo "browser-test: $*" >&2; exit 1; }

command -v node >/dev/null || fail "node (>= 20) is needed"
command -v npm >/dev/null || fail "npm is needed"
node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' \
  || fail "node >= 20 is needed (playwright-core), found $(node --version)"
[ -x "$CHROMIUM" ] || fail "no Chromium at $CHROMIUM (apt-get install -y chromium)"
# Jupyter Book injects every .js/.css found in html_static_path into every page as soon as the
# book has its own _static/ folder: the thousands of MathJax files would all be loaded.
[ ! -d _static ] || fail "the book now has a _static/ folder: keep the vendored packages out of \
html_static_path (see the comment in $0)"

started=$(date +%s)

# playwright-core only: it downloads no browser (and PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD makes sure).
# Installed from the lock file, unless the pinned version is already there.
pinned=$(node -p "require('./$HERE/package.json').dependencies['playwright-core']")
installed=$(node -p "require('./$HERE/node_modules/playwright-core/package.json').version" \
  2>/dev/null || true)
if [ "$installed" != "$pinned" ]; then
  ( cd "$HERE" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error )
fi

# MathJax, html-manager, require.js: tarballs only (npm pack fetches no dependencies; the
# html-manager's embed-amd.js bundles everything it needs). Reused while the versions match.
if [ "$(cat "$STATIC/local-cdn/VERSIONS" 2>/dev/null)" != "$VENDOR_PKGS" ]; then
  rm -rf "$WORK/npm-pack" "$STATIC"
  mkdir -p "$WORK/npm-pack" "$STATIC/local-cdn"
  # shellcheck disable=SC2086
  ( cd "$WORK/npm-pack" && npm pack --silent $VENDOR_PKGS >/dev/null )
  for tgz in "$WORK"/npm-pack/*.tgz; do
    name=$(basename "$tgz" .tgz)
    mkdir -p "$WORK/npm-pack/$name" && tar -xzf "$tgz" -C "$WORK/npm-pack/$name"
  done
  cp -r "$WORK"/npm-pack/mathjax-*/package/es5 "$STATIC/local-cdn/mathjax"
  mkdir -p "$STATIC/local-cdn/html-manager" "$STATIC/local-cdn/requirejs"
  cp "$WORK"/npm-pack/jupyter-widgets-html-manager-*/package/dist/* "$STATIC/local-cdn/html-manager/"
  rm -f "$STATIC"/local-cdn/html-manager/*.map
  cp "$WORK"/npm-pack/requirejs-*/package/require.js "$STATIC/local-cdn/requirejs/"
  echo "$VENDOR_PKGS" > "$STATIC/local-cdn/VERSIONS"
  rm -rf "$WORK/npm-pack"
fi

# A copy of _config.yml with the CDN URLs replaced by the local copies.
"$VENV/bin/python" - "$WORK/_config.yml" "$(pwd)/$STATIC" <<'EOF'
import sys
from pathlib import Path

import yaml

out, static = sys.argv[1], sys.argv[2]
config = yaml.safe_load(Path("_config.yml").read_text(encoding="utf8"))
sphinx = config.setdefault("sphinx", {})
# local_extensions are resolved against the config file's folder: keep them pointing at the book.
for name, path in (sphinx.get("local_extensions") or {}).items():
    sphinx["local_extensions"][name] = str(Path(path).resolve())
sphinx.setdefault("config", {}).update(
    {
        "html_static_path": [static],
        # relative paths are relative to _static/ in the built site
        "mathjax_path": "local-cdn/mathjax/tex-mml-chtml.js",
        "nb_ipywidgets_js": {
            "local-cdn/requirejs/require.js": {},
            "local-cdn/html-manager/embed-amd.js": {},
        },
    }
)
Path(out).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf8")
EOF

echo "browser-test: building the test copy of the site into $WORK/_build/html"
if ! "$VENV/bin/jupyter-book" build . --config "$WORK/_config.yml" --path-output "$WORK" \
    -W -n --keep-going >"$WORK/build.log" 2>&1; then
  tail -n 40 "$WORK/build.log"
  fail "the test build failed (full log: $WORK/build.log)"
fi
echo "browser-test: built in $(( $(date +%s) - started )) s"

# Serve it on a free port of 127.0.0.1, for at most 10 minutes, and stop the server on exit.
port=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
timeout 600 "$VENV/bin/python" -m http.server --bind 127.0.0.1 --directory "$WORK/_build/html" \
  "$port" >"$WORK/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  curl -sf -o /dev/null "http://127.0.0.1:$port/intro.html" && break
  sleep 0.2
done
# Still running, so it is our server that answers (the port was not taken in the meantime).
kill -0 "$server" 2>/dev/null || { cat "$WORK/server.log"; fail "the test server did not start"; }

rm -rf "$SHOTS"
status=0
timeout 300 node "$HERE/check_site.mjs" --site "$WORK/_build/html" --url "http://127.0.0.1:$port/" \
  --screenshots "$SHOTS" --chromium "$CHROMIUM" || status=$?
echo "browser-test: finished in $(( $(date +%s) - started )) s; screenshots in $SHOTS/"
exit "$status"
