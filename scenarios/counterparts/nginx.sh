#!/bin/sh
# nginx for scenarios/counterparts.toml: `sh scenarios/counterparts/nginx.sh PORT WORKERS`.
# Writes a configuration like scripts/nginx/nginx.conf's (GET /plaintext -> the 13-byte static
# file "Hello, World!", keep-alive for the whole run) with WORKERS worker processes, each with
# an SO_REUSEPORT listener of its own on 127.0.0.1:PORT (`listen ... reuseport`, the model the
# `reuseport` exhibit shows), into a fresh directory, then execs nginx in the foreground (`daemon
# off`), so that the master is bench's own child and bench stops it and its workers.
set -eu
port=$1
workers=$2
dir=$(mktemp -d /tmp/iomodels-nginx.XXXXXX)
mkdir -p "$dir/html"
printf 'Hello, World!' > "$dir/html/plaintext"
chmod 755 "$dir" "$dir/html"
chmod 644 "$dir/html/plaintext"
group=$(id -gn nobody 2>/dev/null || echo nogroup)
cat > "$dir/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes $workers;
user nobody $group;
pid nginx.pid;
error_log stderr warn;
events {
    worker_connections 4096;
    accept_mutex off;
    multi_accept on;
}
http {
    access_log off;
    log_not_found off;
    server_tokens off;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    tcp_nodelay on;
    types { }
    default_type text/plain;
    open_file_cache max=16 inactive=60s;
    open_file_cache_valid 60s;
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;
    server {
        listen 127.0.0.1:$port reuseport backlog=4096;
        server_name _;
        root html;
        location = /plaintext { }
        location / { return 404; }
    }
}
CONF
PATH=$PATH:/usr/sbin:/sbin
exec nginx -p "$dir/" -c "$dir/nginx.conf" -e stderr
