#!/usr/bin/env bash
# Re-creates assets/graphiql/ from the npm registry, so GraphiQL works with no internet access
# (the browser never reaches a CDN). The files are minified with esbuild and stored gzipped;
# the server embeds them in the binary and serves them under /graphiql/.
set -euo pipefail
GRAPHIQL_VERSION=${GRAPHIQL_VERSION:-3.8.3}
REACT_VERSION=${REACT_VERSION:-18.3.1}
out="$(cd "$(dirname "$0")/.." && pwd)/assets/graphiql"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "graphiql@$GRAPHIQL_VERSION" "react@$REACT_VERSION" "react-dom@$REACT_VERSION" >/dev/null
for f in *.tgz; do mkdir "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}"; done
npm install --silent --no-save esbuild@0.25 >/dev/null
esbuild=./node_modules/.bin/esbuild
$esbuild "graphiql-$GRAPHIQL_VERSION/package/graphiql.min.js" --minify --log-level=error --outfile=graphiql.min.js
$esbuild "graphiql-$GRAPHIQL_VERSION/package/graphiql.min.css" --minify --log-level=error --outfile=graphiql.min.css
cp "react-$REACT_VERSION/package/umd/react.production.min.js" "react-dom-$REACT_VERSION/package/umd/react-dom.production.min.js" .
mkdir -p "$out"
for f in graphiql.min.js graphiql.min.css react.production.min.js react-dom.production.min.js; do
  gzip -9 -n -c "$f" >"$out/$f.gz"
done
{
  echo "GraphiQL $GRAPHIQL_VERSION, React $REACT_VERSION and ReactDOM $REACT_VERSION, from the npm registry, by scripts/vendor-graphiql.sh."
  echo; echo "== graphiql =="; cat "graphiql-$GRAPHIQL_VERSION/package/LICENSE"
  echo; echo "== react, react-dom =="; cat "react-$REACT_VERSION/package/LICENSE"
} >"$out/LICENSES.txt"
echo "wrote $out"
