#!/bin/sh
# compose's RabbitMQ: definitions.json gives fmn's users no password (a sample must not carry one
# that RabbitMQ would accept). Start the node, give each user the password of its
# FMN_RABBITMQ_<ROLE>_PASSWORD variable (read from standard input, not a command line), then mark
# the node healthy (the compose health check waits for /tmp/fmn-passwords-set).
set -eu
rm -f /tmp/fmn-passwords-set
docker-entrypoint.sh rabbitmq-server &
server=$!
trap 'kill -TERM "$server"; wait "$server"; exit 0' TERM INT
rabbitmqctl -q await_startup
for role in ADMIN CONSUMER API SENDER; do
    eval "password=\${FMN_RABBITMQ_${role}_PASSWORD:?FMN_RABBITMQ_${role}_PASSWORD is not set}"
    user="fmn-$(echo "$role" | tr 'A-Z' 'a-z')"
    printf '%s\n' "$password" | rabbitmqctl -q change_password "$user"
done
touch /tmp/fmn-passwords-set
wait "$server"
