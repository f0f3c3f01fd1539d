#!/usr/bin/env bash
# The server's lower layers know no transport: nothing under server/src/store, server/src/domain or
# server/src/protocol may use axum, prost or tokio_tungstenite (comments aside). The REST routes, the console and
# the WebSocket gateway (ws/) decode and render; the operations they call take plain data.
set -euo pipefail
cd "$(dirname "$0")/../.."
found=$(grep -rnE '(^|[^a-z_])(axum|prost|tokio_tungstenite)::' server/src/store server/src/domain server/src/protocol \
  | grep -vE '^[^:]+:[0-9]+:\s*//' || true)
if [ -n "$found" ]; then
  echo "layers: transport types below the adapters:"
  echo "$found"
  exit 1
fi
echo "layers: store/, domain/ and protocol/ use no axum, prost or tokio_tungstenite"
