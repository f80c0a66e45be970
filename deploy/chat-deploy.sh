#!/usr/bin/env bash
# A real deployment on one machine, as the current user: one redis-server,
# two chat processes on the Redis layer (shared groups, history and
# presence), and nginx in front, each on a free loopback port. Every file
# (config, PIDs, logs) is in RUN_DIR; stop kills by the PIDs found there.
#
#   deploy/chat-deploy.sh start [RUN_DIR]   prints RUN_DIR; RUN_DIR/ports has the ports
#   deploy/chat-deploy.sh stop RUN_DIR
#
# Environment: CHAT (the chat binary; default build/apps/chat/chat),
# ROUTING (routing.yaml), NGINX (/usr/sbin/nginx), REDIS_SERVER (redis-server).
set -Eeuo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
chat=${CHAT:-$root/build/apps/chat/chat}
nginx=${NGINX:-/usr/sbin/nginx}
redis=${REDIS_SERVER:-redis-server}
routing=${ROUTING:-$root/routing.yaml}

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {  # PORT PID NAME
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { echo "error: $3 exited at start; see its log in $run" >&2; return 1; }
    sleep 0.1
  done
  echo "error: $3 is not listening on 127.0.0.1:$1 after 10 s; see its log in $run" >&2
  return 1
}

stop_pid() {  # FILE: SIGTERM, then SIGKILL after 10 s
  local pid
  [[ -f $1 ]] || return 0
  pid=$(cat "$1")
  if kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}

start() {
  run=${1:-$(mktemp -d -t chat-deploy.XXXXXX)}
  mkdir -p "$run"
  trap 'stop "$run"' ERR  # a failed start leaves nothing running
  [[ -x $chat ]] || { echo "error: no chat binary at $chat: build it (scripts/build.sh) or set CHAT" >&2; exit 1; }
  command -v "$nginx" >/dev/null || { echo "error: no nginx at $nginx: scripts/install-deps.sh --test installs it" >&2; exit 1; }
  local redis_port chat1_port chat2_port nginx_port
  redis_port=$(free_port) chat1_port=$(free_port) chat2_port=$(free_port) nginx_port=$(free_port)

  "$redis" --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no --dir "$run" \
    >"$run/redis.log" 2>&1 &
  echo $! >"$run/redis.pid"
  wait_port "$redis_port" "$(cat "$run/redis.pid")" redis-server

  for n in 1 2; do
    local port_var="chat${n}_port"
    # CHAT_SERVER_ID names the process in each client's hello.
    CHAT_SERVER_ID=chat$n "$chat" --routing "$routing" --bind 127.0.0.1 --port "${!port_var}" \
      --layer redis --redis "redis://127.0.0.1:$redis_port" >"$run/chat$n.log" 2>&1 &
    echo $! >"$run/chat$n.pid"
  done
  wait_port "$chat1_port" "$(cat "$run/chat1.pid")" chat1
  wait_port "$chat2_port" "$(cat "$run/chat2.pid")" chat2

  local user_line=""
  # As root, nginx's workers would become 'nobody': keep them as this user.
  [[ $(id -u) -eq 0 ]] && user_line="user $(id -un) $(id -gn);"
  sed -e "s|@RUN@|$run|g" -e "s|@USER@|$user_line|" -e "s|@LISTEN@|127.0.0.1:$nginx_port|" \
      -e "s|@CHAT1@|127.0.0.1:$chat1_port|" -e "s|@CHAT2@|127.0.0.1:$chat2_port|" \
      "$here/nginx.conf.in" >"$run/nginx.conf"
  "$nginx" -p "$run" -c "$run/nginx.conf" -e "$run/nginx-error.log" >"$run/nginx.log" 2>&1 &
  echo $! >"$run/nginx.master.pid"
  wait_port "$nginx_port" "$(cat "$run/nginx.master.pid")" nginx

  cat >"$run/ports" <<PORTS
NGINX_PORT=$nginx_port
CHAT1_PORT=$chat1_port
CHAT2_PORT=$chat2_port
REDIS_PORT=$redis_port
PORTS
  echo "$run"
  echo "chat: http://127.0.0.1:$nginx_port/chat/ (nginx -> chat1 :$chat1_port, chat2 :$chat2_port; redis :$redis_port)" >&2
}

stop() {
  run=${1:?usage: chat-deploy.sh stop RUN_DIR}
  stop_pid "$run/nginx.master.pid"
  stop_pid "$run/chat1.pid"
  stop_pid "$run/chat2.pid"
  stop_pid "$run/redis.pid"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 start [RUN_DIR] | stop RUN_DIR" >&2; exit 2 ;;
esac
