#!/usr/bin/env bash
# Fetch the JavaScript that the book serves itself, so no page loads anything from a CDN:
#   - @jupyter-widgets/html-manager (dist/embed-amd.js + its fonts): renders the saved widget state;
#   - requirejs (require.js): the AMD loader embed-amd.js needs;
#   - mathjax@3 (es5/): renders the math.
# Packages come from the npm registry with `npm pack` (the ordinary client, no install, no node_modules)
# and are unpacked into book/_static/vendor/ (gitignored). Versions are pinned here; re-running is a no-op
# while the stamp file matches.
set -euo pipefail

HTML_MANAGER_VERSION="${HTML_MANAGER_VERSION:-1.0.15}"   # ipywidgets 8.x <-> html-manager 1.x
REQUIREJS_VERSION="${REQUIREJS_VERSION:-2.3.8}"
MATHJAX_VERSION="${MATHJAX_VERSION:-3.2.2}"

root="$(cd "$(dirname "$0")/.." && pwd)"
vendor="$root/book/_static/vendor"
stamp="$vendor/.versions"
LAYOUT=2  # bump when the layout under vendor/ changes
want="html-manager=$HTML_MANAGER_VERSION requirejs=$REQUIREJS_VERSION mathjax=$MATHJAX_VERSION layout=$LAYOUT"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" \
      && -f "$vendor/html-manager/embed-amd.js" && -f "$vendor/require.js" \
      && -f "$vendor/mathjax/tex-chtml.js" && -d "$vendor/_extra/notebooks/@jupyter-widgets/html-manager" ]]; then
    echo "book assets up to date ($want)"
    exit 0
fi

if ! command -v npm >/dev/null; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
        echo "npm not found: installing Debian's npm"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
    else
        echo "npm is needed to fetch the book's JavaScript (apt-get install -y npm)" >&2
        exit 1
    fi
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent \
    "@jupyter-widgets/html-manager@$HTML_MANAGER_VERSION" \
    "requirejs@$REQUIREJS_VERSION" \
    "mathjax@$MATHJAX_VERSION" >/dev/null)

rm -rf "$vendor"
mkdir -p "$vendor/html-manager" "$vendor/mathjax"

mkdir "$tmp/hm" "$tmp/rq" "$tmp/mj"
tar -xzf "$tmp"/jupyter-widgets-html-manager-*.tgz -C "$tmp/hm"
tar -xzf "$tmp"/requirejs-*.tgz -C "$tmp/rq"
tar -xzf "$tmp"/mathjax-*.tgz -C "$tmp/mj"

# html-manager: embed-amd.js and the font files it references relative to itself
cp "$tmp"/hm/package/dist/embed-amd.js "$vendor/html-manager/"
find "$tmp/hm/package/dist" -maxdepth 1 -type f \
    \( -name '*.woff' -o -name '*.woff2' -o -name '*.ttf' -o -name '*.eot' -o -name '*.svg' \) \
    -exec cp {} "$vendor/html-manager/" \;
cp "$tmp"/hm/package/LICENSE "$vendor/html-manager/" 2>/dev/null || true
# embed-amd.js asks for its icon fonts next to the URL of the AMD module that needs them, which requirejs
# resolves relative to the *page*: "@jupyter-widgets/<hash>.<ext>" (base, controls) or
# "@jupyter-widgets/html-manager/dist/<hash>.<ext>". The pages with widgets are notebooks/*.html, so the
# book also publishes the fonts there (html_extra_path: book/_static/vendor/_extra).
for extra_fonts in "$vendor/_extra/notebooks/@jupyter-widgets" \
                   "$vendor/_extra/notebooks/@jupyter-widgets/html-manager/dist"; do
    mkdir -p "$extra_fonts"
    find "$vendor/html-manager" -maxdepth 1 -type f ! -name '*.js' ! -name LICENSE -exec cp {} "$extra_fonts/" \;
done
cp "$tmp"/rq/package/require.js "$vendor/require.js"
# MathJax: the es5 components (tex-chtml.js loads its fonts and extensions relative to itself);
# the speech-rule engine (sre/) and a11y are optional and large, keep them for the menu's accessibility items.
cp -r "$tmp"/mj/package/es5/. "$vendor/mathjax/"
cp "$tmp"/mj/package/LICENSE "$vendor/mathjax/" 2>/dev/null || true

echo "$want" > "$stamp"
echo "book assets fetched into book/_static/vendor ($want): $(du -sh "$vendor" | cut -f1)"
