#!/usr/bin/env bash
# PHP-FPM (static workers: FPM_WORKERS, default 8) and nginx from Debian on
# free loopback ports, every request served by one PHP script, for the load,
# WordPress and HTTP benchmark runs.
#
#   scripts/php-web.sh start DIR SO SCRIPT [PARAM=VALUE ...]
#       starts both with the extension SO loaded (php.ini otherwise Debian's
#       FPM one: display_errors off, so a fatal error is a 500); each
#       PARAM=VALUE becomes a fastcgi_param; prints the HTTP port (HTTP_PORT
#       chooses it). PHP_DEFINES: more php.ini settings for FPM, as
#       'name=value name=value'.
#   scripts/php-web.sh stop DIR
set -euo pipefail
cmd=$1 dir=$2
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
case "$cmd" in
start)
    so=$3 script=$4
    workers=${FPM_WORKERS:-8}
    [[ $workers =~ ^[1-9][0-9]*$ ]] || { echo "FPM_WORKERS must be a positive integer, not '$workers'" >&2; exit 2; }
    shift 4
    params=""
    for p in "$@"; do params+="            fastcgi_param ${p%%=*} ${p#*=};"$'\n'; done
    fpm_port=$(free_port) http_port=${HTTP_PORT:-$(free_port)}
    mkdir -p "$dir/tmp"
    cat >"$dir/fpm.conf" <<CONF
[global]
pid = $dir/fpm.pid
error_log = $dir/fpm.log
daemonize = yes
[app]
listen = 127.0.0.1:$fpm_port
pm = static
pm.max_children = $workers
clear_env = no
catch_workers_output = yes
CONF
    cat >"$dir/nginx.conf" <<CONF
daemon on;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
worker_processes 1;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir/tmp; fastcgi_temp_path $dir/tmp; proxy_temp_path $dir/tmp;
    uwsgi_temp_path $dir/tmp; scgi_temp_path $dir/tmp;
    server {
        listen 127.0.0.1:$http_port;
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $script;
$params            fastcgi_pass 127.0.0.1:$fpm_port;
        }
    }
}
CONF
    defines=()
    for d in ${PHP_DEFINES:-}; do defines+=(-d "$d"); done
    php-fpm8.2 -R -d extension="$so" -d display_errors=0 "${defines[@]}" -y "$dir/fpm.conf"
    nginx -c "$dir/nginx.conf" -p "$dir"
    echo "$http_port"
    ;;
stop)
    for p in nginx fpm; do
        [ -f "$dir/$p.pid" ] && kill "$(cat "$dir/$p.pid" 2>/dev/null)" 2>/dev/null || true
    done
    ;;
esac
